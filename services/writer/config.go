package main

import (
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

// config is the writer's configuration, read from the environment.
type config struct {
	service.Common
	DatabaseURL   string
	Concurrency   int
	MaxConns      int
	RelayBatch    int
	RelayInterval time.Duration
	RunStallAfter time.Duration
	MaxDeliver    int
	AckWait       time.Duration
}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:        service.ReadCommon(e, "WRITER_ADDR", ":8083"),
		DatabaseURL:   e.Required("DATABASE_URL"),
		Concurrency:   e.Int("WRITER_CONCURRENCY", 4),
		MaxConns:      e.Int("WRITER_DB_MAX_CONNS", 10),
		RelayBatch:    e.Int("RELAY_BATCH", 10000),
		RelayInterval: e.Duration("RELAY_INTERVAL", 200*time.Millisecond),
		RunStallAfter: e.Duration("RUN_STALL_TIMEOUT", 10*time.Minute),
		MaxDeliver:    e.Int("MAX_DELIVER", 8),
		AckWait:       e.Duration("WRITER_ACK_WAIT", 30*time.Second),
	}
	return c, e.Err()
}
