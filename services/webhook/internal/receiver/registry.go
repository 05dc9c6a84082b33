package receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Registry serves the connectors of the connector registry (its watched
// copy: a change is in force as soon as the watch sees it), after those of
// Static, the connector the environment defines.
type Registry struct {
	Static   Static
	Registry *connector.Registry
	// Keys opens the webhook secret tokens; nil when
	// CONNECTOR_SECRETS_KEY is not set, and then only Static connectors
	// are served.
	Keys *connector.Keyring
}

// Lookup implements Connectors. A disabled connector, or one without a
// webhook secret token, is unknown: no notification of it can be verified
// or used.
func (r Registry) Lookup(ctx context.Context, ref pipeline.ConnectorRef) (Connector, error) {
	if c, err := r.Static.Lookup(ctx, ref); err == nil {
		return c, nil
	}
	if r.Registry == nil || r.Keys == nil {
		return Connector{}, ErrUnknownConnector
	}
	e, ok := r.Registry.Lookup(ref)
	if !ok || e.State == connector.StateDisabled || e.WebhookSecret == "" {
		return Connector{}, ErrUnknownConnector
	}
	secret, err := r.Keys.Open(e.WebhookSecret, connector.SecretAD(ref, connector.FieldWebhookSecret))
	if err != nil {
		return Connector{}, fmt.Errorf("open the webhook secret of %s: %w", ref, err)
	}
	return Connector{Ref: ref, Secret: Secret(secret)}, nil
}

// ErrOtherApp reports an app_deauthorized of an app other than the
// connector's.
var ErrOtherApp = errors.New("receiver: app_deauthorized names another app's client id")

// Deauthorize is the Config.Deauthorized of a registry: it disables the
// connector and wipes its tokens, when the app removed is the connector's.
//
// at is the event's time: a notification older than the connector's tokens
// (a retry or a replay that arrives after the connector was authorized
// again) changes nothing.
func (r Registry) Deauthorize(ctx context.Context, ref pipeline.ConnectorRef, clientID string, at time.Time) error {
	if _, err := r.Static.Lookup(ctx, ref); err == nil || r.Registry == nil {
		return ErrUnknownConnector
	}
	_, err := r.Registry.Modify(ctx, ref, func(rec *connector.Record) error {
		if clientID == "" || clientID != rec.ClientID {
			return ErrOtherApp
		}
		if !at.IsZero() && rec.Tokens.Issued.After(at) {
			return errAuthorizedSince
		}
		rec.State = connector.StateDisabled
		rec.Reason = "the app was removed from the Zoom account (app_deauthorized); add it in Zoom and authorize the connector again"
		rec.Tokens = connector.Tokens{}
		return nil
	})
	if errors.Is(err, errAuthorizedSince) {
		return nil
	}
	return err
}

// errAuthorizedSince reports an app_deauthorized older than the connector's
// current authorization.
var errAuthorizedSince = errors.New("receiver: the connector was authorized again since")
