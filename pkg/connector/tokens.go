package connector

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// ErrNotActive reports a connector that is not active: it has no tokens to
// use (pending or needing authorization, or disabled).
var ErrNotActive = errors.New("connector: not active")

// refreshBefore is how long before its expiry an access token is
// refreshed: 2 minutes, or a quarter of its life when that is shorter.
func refreshBefore(t Tokens) time.Duration {
	return min(2*time.Minute, t.Expiry.Sub(t.Issued)/4)
}

// leaseFor is how long a replica holds a connector's refresh: longer than a
// token request may take (30 s), so that no other replica presents the
// refresh token while Zoom is still answering for it.
const leaseFor = time.Minute

// TokenSource gives an OAuth connector's access token, refreshing it when it
// is due. Zoom retires a refresh token when it issues the next one, so:
//
//   - at most one replica refreshes a connector at a time: it first takes a
//     lease on the connector's record (compare-and-set); the others wait for
//     the record to change;
//   - the new refresh token is stored, sealed, before the new access token
//     is used;
//   - a refresh Zoom refuses with invalid_grant sets the connector
//     needs_reauthorization and is not tried again: every later Token
//     says so.
//
// A replica that dies between Zoom's answer and the store leaves a lease
// that expires; the next refresh presents the retired token, Zoom answers
// invalid_grant, and the connector asks to be authorized again.
type TokenSource struct {
	reg    *Registry
	keys   *Keyring
	auth   *Authorizer
	ref    pipeline.ConnectorRef
	holder string
	now    func() time.Time
	// timeout bounds one Token call, which oauth2.TokenSource gives no
	// context.
	timeout time.Duration

	mu    sync.Mutex
	stale string // an access token Zoom refused
	// refreshing is held by the one caller of this source that reads or
	// refreshes the tokens from the bucket; the others wait for it and
	// then find its result.
	refreshing sync.Mutex
}

// TokenSource returns the token source of the OAuth connector ref; holder
// names this replica in leases (a random suffix tells apart two sources of
// one replica). A replica uses one source per connector: its callers share
// its refreshes.
func (r *Registry) TokenSource(keys *Keyring, auth *Authorizer, ref pipeline.ConnectorRef, holder string) *TokenSource {
	return &TokenSource{reg: r, keys: keys, auth: auth, ref: ref, holder: holder + "/" + rand.Text()[:8],
		now: time.Now, timeout: 2 * time.Minute}
}

// Token implements oauth2.TokenSource.
func (t *TokenSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	access, expiry, err := t.Access(ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: access, TokenType: "Bearer", Expiry: expiry}, nil
}

// Invalidate marks the access token refused by Zoom (401 code 124): the
// next Token refreshes unless the connector already holds another one (a
// refresh by another caller or replica meanwhile), which stays good.
func (t *TokenSource) Invalidate(refused string) {
	t.mu.Lock()
	t.stale = refused
	t.mu.Unlock()
}

// Access returns a valid access token and its expiry.
func (t *TokenSource) Access(ctx context.Context) (string, time.Time, error) {
	// The watched copy serves nearly every call without a round trip.
	if e, ok := t.reg.Lookup(t.ref); ok {
		if access, ok := t.usable(e); ok {
			return access, e.Tokens.Expiry, nil
		}
	}
	t.refreshing.Lock()
	defer t.refreshing.Unlock()
	for {
		e, err := t.reg.Get(ctx, t.ref)
		if err != nil {
			return "", time.Time{}, err
		}
		if e.State != StateActive {
			return "", time.Time{}, inactive(e.Record)
		}
		if access, ok := t.usable(e); ok {
			return access, e.Tokens.Expiry, nil
		}
		if l := e.Tokens.Lease; l != nil && l.Holder != t.holder && t.now().Before(l.Until) {
			// Another replica is refreshing: wait for its result.
			if err := t.wait(ctx, l.Until); err != nil {
				return "", time.Time{}, err
			}
			continue
		}
		e.Tokens.Lease = &Lease{Holder: t.holder, Until: t.now().Add(leaseFor).UTC()}
		leased, err := t.reg.Update(ctx, e)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return "", time.Time{}, err
		}
		access, expiry, err := t.refresh(ctx, leased)
		if errors.Is(err, errSuperseded) {
			continue // a new authorization came meanwhile: use it
		}
		return access, expiry, err
	}
}

// errSuperseded reports a refresh Zoom refused whose tokens were replaced
// meanwhile (a new authorization): the new ones are to be used, and the
// refusal changes nothing.
var errSuperseded = errors.New("connector: the tokens were replaced while zoom answered")

// usable returns the record's access token when it is good for a while and
// not the one Zoom refused.
func (t *TokenSource) usable(e Entry) (string, bool) {
	if e.State != StateActive || e.Tokens.Access == "" || !t.now().Add(refreshBefore(e.Tokens)).Before(e.Tokens.Expiry) {
		return "", false
	}
	access, err := t.keys.Open(e.Tokens.Access, SecretAD(t.ref, FieldAccessToken))
	if err != nil {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if access == t.stale {
		return "", false
	}
	return access, true
}

func (t *TokenSource) wait(ctx context.Context, until time.Time) error {
	changed := t.reg.Changed()
	d := min(time.Until(until), 500*time.Millisecond)
	timer := time.NewTimer(max(d, 10*time.Millisecond))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-timer.C:
	}
	return nil
}

// refresh presents the refresh token of e, whose lease this replica holds,
// and stores what Zoom answers.
func (t *TokenSource) refresh(ctx context.Context, e Entry) (string, time.Time, error) {
	secret, err := t.keys.Open(e.ClientSecret, SecretAD(t.ref, FieldClientSecret))
	if err != nil {
		return "", time.Time{}, t.release(ctx, fmt.Errorf("open the client secret of %s: %w", t.ref, err))
	}
	if e.Tokens.Refresh == "" {
		return "", time.Time{}, t.reauthorize(ctx, e.Tokens.Refresh, "no refresh token is stored")
	}
	refresh, err := t.keys.Open(e.Tokens.Refresh, SecretAD(t.ref, FieldRefreshToken))
	if err != nil {
		// Most likely a key this replica does not hold yet (a new key
		// rolled out elsewhere first): the token itself is good, and
		// another replica can use it.
		return "", time.Time{}, t.release(ctx, fmt.Errorf("open the refresh token of %s: %w", t.ref, err))
	}
	g, err := t.auth.RefreshGrant(ctx, e.ClientID, secret, refresh)
	if errors.Is(err, ErrInvalidGrant) {
		return "", time.Time{}, t.reauthorize(ctx, e.Tokens.Refresh, "zoom refused the refresh token (invalid_grant)")
	}
	if err != nil {
		return "", time.Time{}, t.release(ctx, err)
	}
	sealed, err := t.seal(g)
	if err != nil {
		return "", time.Time{}, t.release(ctx, err)
	}
	// Stored before use: the refresh token presented is retired now, and
	// the new one must outlive this process.
	if _, err := t.reg.Modify(ctx, t.ref, func(r *Record) error {
		if l := r.Tokens.Lease; l == nil || l.Holder != t.holder {
			return errors.New("the refresh lease was lost while zoom answered")
		}
		r.Tokens = sealed
		return nil
	}); err != nil {
		return "", time.Time{}, fmt.Errorf("store the refreshed tokens of %s: %w", t.ref, err)
	}
	return g.Access, g.Expiry, nil
}

func (t *TokenSource) seal(g Grant) (Tokens, error) { return sealGrant(t.keys, t.ref, g, t.now()) }

// Seal seals the tokens of a grant for the connector ref, as a record
// stores them.
func (r *Registry) Seal(keys *Keyring, ref pipeline.ConnectorRef, g Grant) (Tokens, error) {
	return sealGrant(keys, ref, g, r.now())
}

func sealGrant(keys *Keyring, ref pipeline.ConnectorRef, g Grant, now time.Time) (Tokens, error) {
	access, err := keys.Seal(g.Access, SecretAD(ref, FieldAccessToken))
	if err != nil {
		return Tokens{}, err
	}
	refresh, err := keys.Seal(g.Refresh, SecretAD(ref, FieldRefreshToken))
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, Refresh: refresh, Issued: now.UTC(), Expiry: g.Expiry.UTC(), Scope: g.Scope}, nil
}

// release drops this replica's lease after a refresh that may be tried
// again, and returns err.
func (t *TokenSource) release(ctx context.Context, err error) error {
	_, _ = t.reg.Modify(context.WithoutCancel(ctx), t.ref, func(r *Record) error {
		if l := r.Tokens.Lease; l != nil && l.Holder == t.holder {
			r.Tokens.Lease = nil
		}
		return nil
	})
	return err
}

// reauthorize sets the connector needs_reauthorization, wipes its tokens,
// and returns the error every caller sees until it is authorized again;
// presented is the refresh token Zoom refused (sealed, as stored). Tokens
// stored since (a new authorization) stay, and errSuperseded says so.
func (t *TokenSource) reauthorize(ctx context.Context, presented Sealed, why string) error {
	e, err := t.reg.Modify(context.WithoutCancel(ctx), t.ref, func(r *Record) error {
		if r.Tokens.Refresh != presented || r.State != StateActive {
			return errSuperseded
		}
		r.State = StateNeedsReauthorization
		r.Reason = why + "; authorize the connector again"
		r.Tokens = Tokens{}
		return nil
	})
	if errors.Is(err, errSuperseded) {
		t.release(ctx, nil) //nolint:errcheck // the lease is the new tokens' business now
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %s; and the connector's state could not be stored: %w", t.ref, why, err)
	}
	return inactive(e.Record)
}

// inactive is the error of a connector that cannot sync in its state.
func inactive(r Record) error {
	switch r.State {
	case StateNeedsReauthorization:
		return fmt.Errorf("%w: connector %s needs to be authorized again (%s)", ErrNotActive, r.Ref(), pipeline.Bound(r.Reason, 256))
	case StatePendingAuthorization:
		return fmt.Errorf("%w: connector %s is not authorized yet: open its authorize URL", ErrNotActive, r.Ref())
	case StateDisabled:
		return fmt.Errorf("%w: connector %s is disabled (%s)", ErrNotActive, r.Ref(), pipeline.Bound(r.Reason, 256))
	}
	return fmt.Errorf("%w: connector %s is %s", ErrNotActive, r.Ref(), pipeline.Bound(r.State, 32))
}
