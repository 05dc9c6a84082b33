package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/provision"
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
	// DeleteThreshold is the accidental-deletion guard's fraction (see
	// store.Options).
	DeleteThreshold float64
	// AuditRetention is how long the provisioning audit keeps a request.
	AuditRetention time.Duration
	// MigrateOnly applies the migrations and stops (WRITER_MIGRATE_ONLY):
	// the schema owner's run, before the writer starts on a login that
	// may not change the schema.
	MigrateOnly bool
}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:         service.ReadCommon(e, "WRITER_ADDR", ":8083"),
		DatabaseURL:    e.Required("DATABASE_URL"),
		Concurrency:    e.Int("WRITER_CONCURRENCY", 4),
		MaxConns:       e.Int("WRITER_DB_MAX_CONNS", 10),
		RelayBatch:     e.Int("RELAY_BATCH", 10000),
		RelayInterval:  e.Duration("RELAY_INTERVAL", 200*time.Millisecond),
		RunStallAfter:  e.Duration("RUN_STALL_TIMEOUT", 10*time.Minute),
		MaxDeliver:     e.Int("MAX_DELIVER", 8),
		AckWait:        e.Duration("WRITER_ACK_WAIT", 30*time.Second),
		AuditRetention: e.Duration("PROVISION_AUDIT_RETENTION", provision.DefaultRetention),
		MigrateOnly:    e.Bool("WRITER_MIGRATE_ONLY", false),
	}
	var err error
	c.DeleteThreshold, err = parseThreshold(e.String("DELETE_THRESHOLD", "20%"))
	e.Check(err)
	e.Check(provision.CheckRetention(c.AuditRetention))
	return c, e.Err()
}

// parseThreshold reads DELETE_THRESHOLD: a percentage ("20%") or a fraction
// ("0.2") from 0 (the guard off) to 100%.
func parseThreshold(v string) (float64, error) {
	s, percent := strings.CutSuffix(strings.TrimSpace(v), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err == nil && percent {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("DELETE_THRESHOLD must be a percentage from 0%% to 100%% (\"20%%\") or a fraction from 0 to 1, got %q", v)
	}
	return f, nil
}
