package natstest

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartWithConfig is Start with the server configuration file conf read
// first (the deployment's authorization, TLS), as nats-server -c would;
// the store, address, payload limit and quiet logging of Start apply on
// top of it.
func StartWithConfig(dir string, port int, conf string) (*server.Server, error) {
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if port == 0 {
		port = -1
	}
	opts.Host, opts.Port = "127.0.0.1", port
	opts.JetStream, opts.StoreDir = true, dir
	opts.NoLog, opts.NoSigs = true, true
	opts.MaxPayload = MaxPayload
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server: not ready within 10s")
	}
	return s, nil
}
