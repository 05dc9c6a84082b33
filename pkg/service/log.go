package service

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Logger builds the service's logger from LOG_LEVEL and LOG_FORMAT.
func Logger(w io.Writer, name, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("LOG_LEVEL must be one of trace, debug, info, warn, error; got %q", level)
	}
	if format == "console" || format == "text" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", name).Logger(), nil
}

// Fatal prints one clear line, naming the binary, for an error that stops
// the service (a missing variable, an unreachable dependency at start).
func Fatal(name string, err error) { fatal(os.Stderr, name, err) }

func fatal(w io.Writer, name string, err error) { fmt.Fprintf(w, "%s: %v\n", name, err) }
