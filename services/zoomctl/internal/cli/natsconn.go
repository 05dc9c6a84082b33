package cli

import (
	"context"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

// natsAuth is the environment's NATS credentials and CA (NATS_CREDS,
// NATS_CA_FILE): paths, never the credentials themselves on the command
// line.
func natsAuth() natsx.Auth {
	return natsx.Auth{
		CredsFile: strings.TrimSpace(os.Getenv("NATS_CREDS")),
		CAFile:    strings.TrimSpace(os.Getenv("NATS_CA_FILE")),
	}
}

// connectNATS connects zoomctl to NATS at url as name, with the
// environment's credentials and CA.
func connectNATS(ctx context.Context, url, name string) (*nats.Conn, jetstream.JetStream, error) {
	return natsx.ConnectAuth(ctx, url, name, natsAuth(), zerolog.Nop())
}
