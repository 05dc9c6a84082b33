package devstack

import (
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

// CredsDir is the directory of the stack's NATS credentials when it is
// secured: the server's authorization and one credentials file per role
// (natsauth.Init), as a deployment has them.
func (s *Stack) CredsDir() string { return filepath.Join(s.cfg.Dir, "nats-creds") }

// CredsFile returns the credentials file of a role, or "" when the stack
// is not secured.
func (s *Stack) CredsFile(r natsauth.Role) string {
	if !s.cfg.Secured {
		return ""
	}
	return filepath.Join(s.CredsDir(), natsauth.CredsFile(r))
}

// initCreds writes the credentials of a secured stack.
func (s *Stack) initCreds() error {
	if !s.cfg.Secured {
		return nil
	}
	_, err := natsauth.Init(s.CredsDir())
	return err
}

// startNATS starts the embedded server with its store in dir, with the
// deployment's authorization when the stack is secured.
func (s *Stack) startNATS(dir string, port int) (*server.Server, error) {
	return StartNATSServer(s.natsServerConfig(dir, port))
}

// natsAuth is how the stack's own connection authenticates: as the
// operator's zoomctl.
func (s *Stack) natsAuth() natsx.Auth {
	return natsx.Auth{CredsFile: s.CredsFile(natsauth.RoleOperator)}
}
