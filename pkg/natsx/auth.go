package natsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Auth is how a client proves who it is to NATS and checks who the server
// is: a credentials file (user JWT and nkey seed, NATS_CREDS) and the CA
// that signed the server's certificate (NATS_CA_FILE). A zero Auth
// connects without credentials and trusts the system's roots. Only the
// paths are kept; the credentials are read by the client when it connects
// and never appear in an error or a log.
type Auth struct {
	CredsFile string
	CAFile    string
}

// IsZero reports whether a carries neither credentials nor a CA.
func (a Auth) IsZero() bool { return a.CredsFile == "" && a.CAFile == "" }

// Options checks the files and returns the client options that use them.
// With credentials, the client's replies come on the inbox prefix its
// permissions allow (the subscribe subject of the form _INBOX….>), so that
// no identity reads another's replies.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.CredsFile != "" {
		prefix, err := inboxOfCreds(a.CredsFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(a.CredsFile))
		if prefix != "" {
			opts = append(opts, nats.CustomInboxPrefix(prefix))
		}
	}
	if a.CAFile != "" {
		b, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_CA_FILE: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("NATS_CA_FILE: %s holds no PEM certificate", a.CAFile)
		}
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	return opts, nil
}

// inboxOfCreds checks that path is a credentials file and returns the
// inbox prefix its user may subscribe to, or "" when it names none. Its
// errors name the file, never what it holds.
func inboxOfCreds(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		return "", fmt.Errorf("NATS_CREDS: %w", err)
	}
	bad := fmt.Errorf("NATS_CREDS: %s is not a NATS credentials file (a user JWT and its nkey seed)", path)
	token, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return "", bad
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return "", bad
	}
	if _, err := jwt.ParseDecoratedUserNKey(b); err != nil {
		return "", bad
	}
	for _, s := range uc.Sub.Allow {
		if strings.HasPrefix(s, nats.InboxPrefix[:len(nats.InboxPrefix)-1]) && strings.HasSuffix(s, ".>") && !strings.ContainsAny(strings.TrimSuffix(s, ".>"), "*>") {
			return strings.TrimSuffix(s, ".>"), nil
		}
	}
	return "", nil
}

// authError reports whether err is the server refusing the client's
// credentials: retrying with the same ones cannot succeed.
func authError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// certError reports whether err is the client refusing the server's
// certificate: retrying with the same CA cannot succeed.
func certError(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host)
}

// PermissionSubject returns the subject of a permission violation the
// server reported, and whether err is one.
func PermissionSubject(err error) (string, bool) {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return "", false
	}
	// "nats: permissions violation: Permissions Violation for Publish to \"x\""
	msg := err.Error()
	i := strings.LastIndex(strings.ToLower(msg), " to ")
	if i < 0 {
		return "", true
	}
	return strings.Trim(strings.TrimSpace(msg[i+4:]), `"`), true
}
