package natsauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// The files of a credentials directory. The seeds and the .creds files
// are secrets (mode 0600, the directory 0700); the server configuration
// holds only public JWTs.
const (
	// FileOperatorSeed signs the accounts.
	FileOperatorSeed = "operator.nk"
	// FileAccountSeed signs the users: whoever holds it issues
	// credentials.
	FileAccountSeed = "account.nk"
	// FileServerConfig is the nats-server configuration fragment (include
	// it): the operator, the system account and the connector's account,
	// preloaded into a memory resolver.
	FileServerConfig = "nats-auth.conf"
	// FileOperatorJWT and FileSystemJWT keep the operator's and the system
	// account's JWTs (public), so that the configuration written again
	// trusts the same ones.
	FileOperatorJWT = "operator.jwt"
	FileSystemJWT   = "system.jwt"
	// FileRevoked lists the users whose credentials are revoked: a public
	// key and the Unix time of the revocation per line. The account JWT
	// carries them.
	FileRevoked = "revoked"
)

// CredsFile is the name of a role's credentials file in the directory.
func CredsFile(r Role) string { return string(r) + ".creds" }

// TenantCredsFile is the name of a tenant consumer's credentials file.
func TenantCredsFile(tenant, name string) string {
	return "tenant-" + tenant + "-" + name + ".creds"
}

// MaxControlLine is the longest protocol line the server takes: it holds
// a client's user JWT.
const MaxControlLine = 32 << 10

// Authority is the signing material of a deployment: the operator, the
// system account and the connector's account, with their JWTs.
type Authority struct {
	operator, account nkeys.KeyPair
	// opJWT, sysJWT and accountJWT are what the server trusts.
	opJWT, sysJWT, accountJWT string
	sysPub, accountPub        string
}

// NewAuthority creates an operator and its accounts.
func NewAuthority() (*Authority, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	acct, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	opPub, err := op.PublicKey()
	if err != nil {
		return nil, err
	}
	// The system account takes no user: its key is not kept, its JWT is.
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	sysPub, err := sys.PublicKey()
	if err != nil {
		return nil, err
	}
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "zoom-connector"
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	if err != nil {
		return nil, fmt.Errorf("natsauth: operator: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(op)
	if err != nil {
		return nil, fmt.Errorf("natsauth: system account: %w", err)
	}
	a := &Authority{operator: op, account: acct, opJWT: opJWT, sysJWT: sysJWT, sysPub: sysPub}
	return a, a.signAccount(nil)
}

// signAccount signs the connector's account JWT with the users revoked:
// the one JWT that changes, so that a server reloads the configuration
// written again (its operator and system account stay the same).
func (a *Authority) signAccount(revoked map[string]time.Time) error {
	acctPub, err := a.account.PublicKey()
	if err != nil {
		return err
	}
	ac := jwt.NewAccountClaims(acctPub)
	ac.Name = "ZOOM"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
		MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit,
		Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit,
	}
	for user, at := range revoked {
		ac.RevokeAt(user, at)
	}
	token, err := ac.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("natsauth: account: %w", err)
	}
	a.accountJWT, a.accountPub = token, acctPub
	return nil
}

// ServerConfig is the nats-server configuration fragment that trusts the
// authority: operator mode with a memory resolver. A client without
// credentials of the account is refused.
func (a *Authority) ServerConfig() string {
	var b strings.Builder
	b.WriteString("# NATS authorization of the Zoom connector (zoomctl creds init).\n")
	b.WriteString("# Public JWTs only: the operator, the system account, the connector's account.\n")
	fmt.Fprintf(&b, "operator: %q\n", a.opJWT)
	fmt.Fprintf(&b, "system_account: %q\n", a.sysPub)
	b.WriteString("resolver: MEMORY\n")
	// A client sends its user JWT, permissions and all, in one protocol
	// line: the fetcher's is longer than the default 4 KiB.
	fmt.Fprintf(&b, "max_control_line: %d\n", MaxControlLine)
	b.WriteString("resolver_preload: {\n")
	fmt.Fprintf(&b, "  %s: %q\n", a.accountPub, a.accountJWT)
	fmt.Fprintf(&b, "  %s: %q\n", a.sysPub, a.sysJWT)
	b.WriteString("}\n")
	return b.String()
}

// Creds returns a credentials file (user JWT and nkey seed) of a user of
// the account named name with permissions p.
func (a *Authority) Creds(name string, p Permissions) ([]byte, error) {
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, err := user.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.IssuerAccount = "" // signed by the account's own key
	if len(p.Publish) == 0 || len(p.Subscribe) == 0 {
		// An empty allow list allows everything.
		return nil, fmt.Errorf("natsauth: %s: a user needs publish and subscribe permissions", name)
	}
	uc.Pub.Allow.Add(p.Publish...)
	uc.Pub.Deny.Add(p.PublishDeny...)
	uc.Sub.Allow.Add(p.Subscribe...)
	if p.Responses {
		uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: ResponseWindow}
	}
	token, err := uc.Encode(a.account)
	if err != nil {
		return nil, fmt.Errorf("natsauth: user %s: %w", name, err)
	}
	seed, err := user.Seed()
	if err != nil {
		return nil, err
	}
	return jwt.FormatUserConfig(token, seed)
}

// RoleCreds returns the credentials of a fixed role.
func (a *Authority) RoleCreds(r Role) ([]byte, error) {
	p, err := PermissionsOf(r)
	if err != nil {
		return nil, err
	}
	return a.Creds(string(r), p)
}

// TenantCreds returns the credentials of a downstream consumer of one
// tenant, named name (an application of the tenant, say).
func (a *Authority) TenantCreds(tenant, name string) ([]byte, error) {
	p, err := TenantPermissions(tenant, name)
	if err != nil {
		return nil, err
	}
	return a.Creds("tenant-"+tenant+"-"+name, p)
}

// LoadAuthority reads the authority of a credentials directory.
func LoadAuthority(dir string) (*Authority, error) {
	op, err := readSeed(filepath.Join(dir, FileOperatorSeed), nkeys.PrefixByteOperator)
	if err != nil {
		return nil, err
	}
	acct, err := readSeed(filepath.Join(dir, FileAccountSeed), nkeys.PrefixByteAccount)
	if err != nil {
		return nil, err
	}
	a := &Authority{operator: op, account: acct}
	for _, f := range []struct {
		name string
		into *string
	}{{FileOperatorJWT, &a.opJWT}, {FileSystemJWT, &a.sysJWT}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("natsauth: read %s: %w", f.name, err)
		}
		*f.into = strings.TrimSpace(string(b))
	}
	sc, err := jwt.DecodeAccountClaims(a.sysJWT)
	if err != nil {
		return nil, fmt.Errorf("natsauth: %s: %w", FileSystemJWT, err)
	}
	a.sysPub = sc.Subject
	revoked, err := readRevoked(dir)
	if err != nil {
		return nil, err
	}
	return a, a.signAccount(revoked)
}

// readRevoked reads the directory's revocations.
func readRevoked(dir string) (map[string]time.Time, error) {
	path := filepath.Join(dir, FileRevoked)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		key, at, ok := strings.Cut(line, " ")
		unix, err := strconv.ParseInt(strings.TrimSpace(at), 10, 64)
		if !ok || err != nil || !nkeys.IsValidPublicUserKey(key) {
			return nil, fmt.Errorf("natsauth: %s line %d is not \"<user public key> <unix time>\"", path, i+1)
		}
		out[key] = time.Unix(unix, 0)
	}
	return out, nil
}

// Revoke revokes the credentials in the file creds, which the directory's
// account issued, and writes the server configuration again: once the
// server has read it (a reload), they are refused. It returns the user's
// name.
func Revoke(dir, creds string) (string, error) {
	a, err := LoadAuthority(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(creds)
	if err != nil {
		return "", err
	}
	token, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return "", fmt.Errorf("natsauth: %s is not a credentials file", creds)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return "", fmt.Errorf("natsauth: %s is not a credentials file", creds)
	}
	if uc.Issuer != a.accountPub {
		return "", fmt.Errorf("natsauth: %s was not issued by the account of %s", creds, dir)
	}
	revoked, err := readRevoked(dir)
	if err != nil {
		return "", err
	}
	var lines []string
	for k, at := range revoked {
		lines = append(lines, k+" "+strconv.FormatInt(at.Unix(), 10))
	}
	// A second later than now: the JWT's issue time has a second's grain.
	lines = append(lines, uc.Subject+" "+strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
	slices.Sort(lines)
	if err := writeFile(filepath.Join(dir, FileRevoked), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	if a, err = LoadAuthority(dir); err != nil {
		return "", err
	}
	return uc.Name, writeFile(filepath.Join(dir, FileServerConfig), []byte(a.ServerConfig()), 0o644)
}

// readSeed reads an nkey seed file; its errors never show the seed.
func readSeed(path string, want nkeys.PrefixByte) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("natsauth: read %s: %w", path, errors.Unwrap(err))
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, fmt.Errorf("natsauth: %s holds no nkey seed", path)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicKey(pub) || nkeys.Prefix(pub) != want {
		return nil, fmt.Errorf("natsauth: %s holds the seed of another kind of key", path)
	}
	return kp, nil
}

// Init makes dir a credentials directory: the authority (kept when dir
// has one, so that credentials issued before stay valid), the server
// configuration, and the credentials of every fixed role. It returns the
// paths it wrote.
func Init(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var a *Authority
	var err error
	if !exists(filepath.Join(dir, FileOperatorSeed)) && !exists(filepath.Join(dir, FileAccountSeed)) {
		if a, err = NewAuthority(); err == nil {
			err = a.writeSeeds(dir)
		}
	} else {
		a, err = LoadAuthority(dir)
	}
	if err != nil {
		return nil, err
	}
	var written []string
	write := func(name string, b []byte, mode os.FileMode) error {
		path := filepath.Join(dir, name)
		if err := writeFile(path, b, mode); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	if err := write(FileServerConfig, []byte(a.ServerConfig()), 0o644); err != nil {
		return nil, err
	}
	for _, r := range Roles {
		creds, err := a.RoleCreds(r)
		if err != nil {
			return nil, err
		}
		if err := write(CredsFile(r), creds, 0o600); err != nil {
			return nil, err
		}
	}
	return written, nil
}

// IssueTenant writes the credentials of a tenant's downstream consumer
// into the directory with the authority, and returns the file's path. The
// server needs no change: it trusts every user the account signs.
func IssueTenant(dir, tenant, name string) (string, error) {
	if err := checkLabel(name); err != nil {
		return "", err
	}
	a, err := LoadAuthority(dir)
	if err != nil {
		return "", err
	}
	creds, err := a.TenantCreds(tenant, name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, TenantCredsFile(tenant, name))
	return path, writeFile(path, creds, 0o600)
}

// checkLabel checks a consumer's name as a tenant name is checked.
func checkLabel(name string) error {
	err := pipeline.CheckName("consumer", name)
	if err != nil {
		return fmt.Errorf("natsauth: consumer name: %w", err)
	}
	return nil
}

func (a *Authority) writeSeeds(dir string) error {
	for name, token := range map[string]string{FileOperatorJWT: a.opJWT, FileSystemJWT: a.sysJWT} {
		if err := writeFile(filepath.Join(dir, name), []byte(token+"\n"), 0o644); err != nil {
			return err
		}
	}
	for name, kp := range map[string]nkeys.KeyPair{FileOperatorSeed: a.operator, FileAccountSeed: a.account} {
		seed, err := kp.Seed()
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, name), append(seed, '\n'), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to path with mode, replacing what was there.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
