package console

import (
	"errors"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
)

// errCannotEnable is why a connector cannot be set active from the
// console: it lacks what it needs to sync.
type errCannotEnable struct{ why string }

func (e errCannotEnable) Error() string { return e.why }

// canEnable checks that rec has what a sync needs before the console sets
// it active: an s2s connector its client id, account id and a client
// secret the keyring opens. An OAuth connector is enabled only by
// authorizing it again (that stores new tokens), never from here.
func canEnable(keys *connector.Keyring, rec connector.Record) error {
	if rec.Auth != connector.AuthS2S {
		return errCannotEnable{"An OAuth connector is enabled by authorizing it again."}
	}
	switch {
	case rec.ClientID == "" || rec.AccountID == "":
		return errCannotEnable{"The connector cannot be enabled: its client id or account id is missing. Set them (zoomctl connector update) first."}
	case rec.ClientSecret == "":
		return errCannotEnable{"The connector cannot be enabled: it has no client secret (it was wiped). Set one (zoomctl connector update) first."}
	}
	if _, err := keys.Open(rec.ClientSecret, connector.SecretAD(rec.Ref(), connector.FieldClientSecret)); err != nil {
		return errCannotEnable{"The connector cannot be enabled: its client secret cannot be opened with the keys this service has. Set it again (zoomctl connector update) first."}
	}
	return nil
}

// enableMessage is what the page says of an enable that failed.
func enableMessage(err error) string {
	var ce errCannotEnable
	if errors.As(err, &ce) {
		return ce.why
	}
	return "The connector's state could not be changed: " + bound(err.Error(), 300)
}
