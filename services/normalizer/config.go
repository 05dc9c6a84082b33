package main

import "github.com/claritysecurity/zoom-connector/pkg/service"

// config is the normalizer's configuration, read from the environment.
type config struct {
	service.Common
	Concurrency int
	MaxDeliver  int
}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:      service.ReadCommon(e, "NORMALIZER_ADDR", ":8082"),
		Concurrency: e.Int("NORMALIZER_CONCURRENCY", 4),
		MaxDeliver:  e.Int("MAX_DELIVER", 8),
	}
	return c, e.Err()
}
