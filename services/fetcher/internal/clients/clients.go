// Package clients gives the fetcher the Zoom client of each connector it
// serves: the one defined by the environment, if any, and every connector
// of the registry, each built on first use from the registry's watched copy
// and rebuilt when its credentials change.
package clients

import (
	"context"
	"fmt"
	"sync"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// Config configures a Set.
type Config struct {
	// Env is the connector the environment defines, zero when it defines
	// none; EnvClient is its client. It is served whatever the registry
	// says of a connector of the same name.
	Env       pipeline.ConnectorRef
	EnvClient runner.Client
	// Registry holds the registered connectors; nil serves none. Its
	// Watch must run for the Set to see them.
	Registry *connector.Registry
	// Keys opens the registered connectors' secrets; nil (no
	// CONNECTOR_SECRETS_KEY) refuses every registered connector.
	Keys *connector.Keyring
	// Authorizer refreshes the tokens of OAuth connectors.
	Authorizer *connector.Authorizer
	// Zoom is what every registered connector's client shares: the API and
	// OAuth URLs, the plan, pacing, the observer. Credentials, token
	// source and logger are set per connector.
	Zoom zoom.Config
	// Budget, when set, paces every client under its account's budget,
	// shared with the other replicas: the account id for Server-to-Server
	// connectors, the account the authorization reached for OAuth ones.
	Budget *ratebudget.Budget
	// Holder names this fetcher replica in the leases of token refreshes.
	Holder string
	// Log is the base of each client's logger, which names its connector.
	Log zerolog.Logger
}

// Set is the Zoom clients of the connectors the fetcher serves. It holds no
// goroutine, and a client only for a connector that was used since its
// settings last changed: a thousand registered connectors that never sync
// cost a thousand records of the registry's copy, nothing more.
type Set struct {
	cfg Config

	mu    sync.Mutex
	cache map[pipeline.ConnectorRef]cached
}

// cached is a registered connector's client and the settings it was built
// from.
type cached struct {
	settings settings
	client   *zoom.Client
}

// settings are what a registered connector's client is built from: a
// change of any of them (a new secret, a rotated key re-sealing the old
// one) builds a new client. Tokens are not among them: an OAuth client's
// token source reads them from the registry at each use.
type settings struct {
	auth, clientID, accountID string
	secret                    connector.Sealed
}

// New returns a Set.
func New(cfg Config) *Set {
	return &Set{cfg: cfg, cache: map[pipeline.ConnectorRef]cached{}}
}

// Client returns the client of connector c, or why it is not served (see
// runner.Clients): unknown, not active (pending authorization, needing a new
// one, disabled), CONNECTOR_SECRETS_KEY not set, or secrets that do not
// open.
func (s *Set) Client(ctx context.Context, c pipeline.ConnectorRef) (runner.Client, error) {
	if !s.cfg.Env.IsZero() && c == s.cfg.Env {
		return s.cfg.EnvClient, nil
	}
	if s.cfg.Registry == nil {
		return nil, runner.Unknown(c)
	}
	// A refusal (unknown, or not active) is confirmed from the bucket:
	// the watched copy may lag the registration or authorization that
	// came with this very trigger (the first sync). Refusals are rare; a
	// served connector costs no read.
	e, ok, err := s.cfg.Registry.Find(ctx, c, func(e connector.Entry) bool { return e.State != connector.StateActive })
	if err != nil {
		return nil, err
	}
	if !ok {
		s.forget(c)
		return nil, runner.Unknown(c)
	}
	if s.cfg.Keys == nil {
		return nil, runner.NotServed(noKeyError{c})
	}
	if e.State != connector.StateActive {
		// Its client is dropped: it may stay inactive for good, and a
		// client is rebuilt in microseconds when it comes back.
		s.forget(c)
		return nil, runner.NotServed(inactive(e.Record))
	}
	want := settings{auth: e.Auth, clientID: e.ClientID, accountID: e.AccountID, secret: e.ClientSecret}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got, ok := s.cache[c]; ok && got.settings == want {
		return got.client, nil
	}
	client, err := s.build(c, e.Record)
	if err != nil {
		delete(s.cache, c)
		return nil, runner.NotServed(err)
	}
	s.cache[c] = cached{settings: want, client: client}
	return client, nil
}

// Cached reports how many registered connectors have a client, for tests
// of what idle connectors cost.
func (s *Set) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cache)
}

func (s *Set) forget(c pipeline.ConnectorRef) {
	s.mu.Lock()
	delete(s.cache, c)
	s.mu.Unlock()
}

// build makes the client of the registered connector rec, active.
func (s *Set) build(c pipeline.ConnectorRef, rec connector.Record) (*zoom.Client, error) {
	cfg := s.cfg.Zoom
	cfg.AccountID, cfg.ClientID, cfg.ClientSecret, cfg.TokenSource = "", "", "", nil
	cfg.Logger = s.cfg.Log.With().Str("tenant", c.Tenant).Str("connector", c.ID).Logger()
	switch rec.Auth {
	case connector.AuthS2S:
		secret, err := s.cfg.Keys.Open(rec.ClientSecret, connector.SecretAD(c, connector.FieldClientSecret))
		if err != nil {
			return nil, fmt.Errorf("connector %s: open its client secret: %w", c, err)
		}
		cfg.AccountID, cfg.ClientID, cfg.ClientSecret = rec.AccountID, rec.ClientID, secret
	case connector.AuthOAuth:
		// One token source per connector in this replica: its callers
		// share its refreshes, and the registry's leases keep the other
		// replicas' from presenting the same refresh token.
		cfg.TokenSource = s.cfg.Registry.TokenSource(s.cfg.Keys, s.cfg.Authorizer, c, s.cfg.Holder)
	default:
		return nil, fmt.Errorf("connector %s: auth %q is not one the fetcher knows", c, rec.Auth)
	}
	if s.cfg.Budget != nil {
		// Two connectors on one account share its budget; an OAuth
		// connector whose account is not known yet has its own.
		cfg.Budget = s.cfg.Budget.Account(ratebudget.AccountKey(rec.AccountID, c.String()))
	}
	client, err := zoom.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", c, err)
	}
	return client, nil
}

// noKeyError refuses a registered connector when CONNECTOR_SECRETS_KEY is
// not set: its secrets cannot be opened.
type noKeyError struct{ c pipeline.ConnectorRef }

func (e noKeyError) Error() string {
	return fmt.Sprintf("connector %s cannot be synced: CONNECTOR_SECRETS_KEY is not set in the fetcher's environment, so its secrets cannot be opened", e.c)
}

// Is makes the error match connector.ErrNoKey.
func (e noKeyError) Is(target error) bool { return target == connector.ErrNoKey }

// inactiveError refuses a registered connector that is not active: it says
// the connector's state, why, and what to do.
type inactiveError struct{ msg string }

func (e inactiveError) Error() string { return e.msg }

// Is makes the error match connector.ErrNotActive.
func (e inactiveError) Is(target error) bool { return target == connector.ErrNotActive }

// maxReason bounds what a refusal quotes of the record's reason.
const maxReason = 256

func inactive(rec connector.Record) error {
	c := rec.Ref()
	authorize := fmt.Sprintf("zoomctl connector authorize --tenant %s --connector %s", c.Tenant, c.ID)
	var todo string
	switch rec.State {
	case connector.StatePendingAuthorization:
		todo = "it has not been authorized in Zoom yet: open its authorize URL (" + authorize + ")"
	case connector.StateNeedsReauthorization:
		todo = "Zoom no longer accepts its authorization: authorize it again (" + authorize + ")"
	case connector.StateDisabled:
		todo = "it does not sync until it is enabled again: authorize it again (an OAuth connector) " +
			"or update its credentials (zoomctl connector update)"
	default:
		todo = "it syncs only when active"
	}
	msg := fmt.Sprintf("connector %s is %s", c, pipeline.Bound(rec.State, 32))
	if rec.Reason != "" {
		msg += " (" + pipeline.Bound(rec.Reason, maxReason) + ")"
	}
	return inactiveError{msg: msg + ": " + todo}
}
