// Package devstack runs the whole connector on one machine: an embedded NATS
// JetStream server, the Zoom simulator, and the service binaries as child
// processes against a PostgreSQL database. zoomctl dev and the end-to-end
// tests use it.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// Services are the long-running binaries, in start order.
var Services = []string{"writer", "normalizer", "fetcher", "webhook"}

// Config describes a stack.
type Config struct {
	// BinDir holds the service binaries.
	BinDir string
	// DatabaseURL is the writer's database.
	DatabaseURL string
	// Dir holds the NATS store and the service logs.
	Dir string
	// Connector is the connector the services serve; zero is default/zoom,
	// the services' own default.
	Connector pipeline.ConnectorRef
	// Org is the simulator's organisation.
	Org *zoomtest.Org
	// Sim configures the simulator; credentials and the webhook secret are
	// filled in when empty.
	Sim zoomtest.Options
	// Env adds variables to every service's environment.
	Env map[string]string
	// Log, when set, receives every service's log lines too.
	Log io.Writer
	// OAuth runs the connector as Clarity connects Zoom: the services get a
	// secrets key and no credentials in their environment, the
	// simulator's account an OAuth app whose redirect is the webhook
	// service's, and Connect registers and authorizes the connector.
	OAuth bool
	// Secured runs NATS as a deployment does: authorization on, and each
	// service with its own credentials (NATS_CREDS, a file in CredsDir).
	Secured bool
	// NATSProcess runs the NATS server as a process of its own (zoomctl's
	// NATSVerb from BinDir) instead of inside this one, so that its memory
	// and CPU are its own (the bench); NATSProc is then that process.
	NATSProcess bool
	// NATSCPUProfile, with NATSProcess, is where that process writes a CPU
	// profile of itself until it stops ("" for none).
	NATSCPUProfile string
}

// Stack is a running stack.
type Stack struct {
	cfg        Config
	NATS       *server.Server
	NATSProc   *Proc
	NATSURL    string
	NC         *nats.Conn
	JS         jetstream.JetStream
	Sim        *zoomtest.Server
	mu         sync.Mutex
	procs      []*Proc
	addrs      map[string]string
	WebhookURL string
	// secretsKey is the services' CONNECTOR_SECRETS_KEY, and app the
	// simulator's OAuth app, in OAuth mode.
	secretsKey string
	app        *zoomtest.App
	// AdminURL and AdminToken are the admin console's address and
	// sign-in token in OAuth mode, served by the first webhook replica.
	AdminURL, AdminToken string
	adminServed          bool
}

// Start starts NATS and the simulator; services are started with Run.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Connector.IsZero() {
		cfg.Connector = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	}
	if cfg.Sim.WebhookSecret == "" {
		cfg.Sim.WebhookSecret = "dev-webhook-secret"
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, addrs: map[string]string{}}
	if err := s.initCreds(); err != nil {
		return nil, err
	}
	var err error
	if cfg.NATSProcess {
		s.NATSProc, s.NATSURL, err = s.startNATSProcess(s.natsServerConfig(filepath.Join(cfg.Dir, "nats"), 0))
	} else {
		s.NATS, err = s.startNATS(filepath.Join(cfg.Dir, "nats"), 0)
	}
	if err != nil {
		return nil, err
	}
	if s.NATS != nil {
		s.NATSURL = s.NATS.ClientURL()
	}
	s.NC, s.JS, err = natsx.ConnectAuth(ctx, s.NATSURL, "devstack", s.natsAuth(), zerolog.Nop())
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := natsx.EnsureStreams(ctx, s.JS, pipeline.Streams(1)...); err != nil {
		s.Close()
		return nil, err
	}
	webhookAddr, err := freeAddr()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.addrs["webhook"] = webhookAddr
	s.WebhookURL = "http://" + webhookAddr + "/webhooks/zoom/" + cfg.Connector.String()
	s.Sim = zoomtest.New(cfg.Org, cfg.Sim)
	if _, err := s.Sim.Start("127.0.0.1:0"); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.OAuth {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			s.Close()
			return nil, err
		}
		s.secretsKey = "dev:" + base64.StdEncoding.EncodeToString(key)
		s.app, err = s.Sim.DefaultAccount().AddApp(zoomtest.AppOptions{RedirectURIs: []string{s.redirectURL()}})
		if err != nil {
			s.Close()
			return nil, err
		}
		if err := s.prepareAdmin(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// redirectURL is the OAuth app's redirect in OAuth mode: the webhook
// service's own route, where Clarity's would forward to it.
func (s *Stack) redirectURL() string {
	return connector.RedirectURL(s.redirectTemplate(), s.cfg.Connector)
}

// prepareAdmin picks the admin console's address and writes its sign-in
// token to a file only the user can read, which the webhook service reads
// (ADMIN_TOKEN_FILE).
func (s *Stack) prepareAdmin() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	s.AdminToken = base64.RawURLEncoding.EncodeToString(tok)
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, "admin-token"), []byte(s.AdminToken+"\n"), 0o600); err != nil {
		return err
	}
	s.addrs["admin"], s.AdminURL = addr, "http://"+addr
	return nil
}

// RedirectTemplate is the services' OAUTH_REDIRECT_URL in OAuth mode: the
// webhook service's own route.
func (s *Stack) RedirectTemplate() string { return s.redirectTemplate() }

func (s *Stack) redirectTemplate() string {
	return "http://" + s.addrs["webhook"] + "/application/oauthProcessCode/{connector}"
}

// Connect registers the stack's connector through the admin API as an OAuth
// app, and authorizes it as a browser would (the simulator approves at
// once), which starts its first full sync. It returns when the connector is
// active.
func (s *Stack) Connect(ctx context.Context) error {
	if s.app == nil {
		return errors.New("devstack: Connect needs a stack started with OAuth")
	}
	c := connector.Client{NC: s.NC, Timeout: 30 * time.Second}
	ref := s.cfg.Connector
	// The admin API answers once the webhook service is up.
	var sealed, webhook string
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sealed, err = c.SealSecret(ctx, ref, connector.FieldClientSecret, s.app.ClientSecret())
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if webhook, err = c.SealSecret(ctx, ref, connector.FieldWebhookSecret, s.cfg.Sim.WebhookSecret); err != nil {
		return err
	}
	r, err := c.Call(ctx, connector.AdminSubject(ref, connector.OpAdd), connector.SettingsRequest{
		Auth: connector.AuthOAuth, ClientID: s.app.ClientID(), ClientSecret: sealed, WebhookSecret: webhook, Schedule: connector.ScheduleManual})
	if err != nil {
		return err
	}
	if r.Connector == nil || r.Connector.AuthorizeURL == "" {
		return errors.New("devstack: the admin API gave no authorize URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Connector.AuthorizeURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("devstack: follow the authorize URL: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("devstack: the OAuth redirect answered %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := c.Call(ctx, connector.AdminSubject(ref, connector.OpShow), struct{}{})
		if err == nil && r.Connector != nil && r.Connector.State == connector.StateActive {
			return nil
		}
	}
	return errors.New("devstack: the connector was not active 15 s after its authorization")
}

// Config returns the stack's configuration.
func (s *Stack) Config() Config { return s.cfg }

// Env is the environment a service of the stack runs with.
func (s *Stack) Env(name string) ([]string, error) {
	addr, err := s.addr(name)
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"NATS_URL":                  s.NATSURL,
		"DATABASE_URL":              s.cfg.DatabaseURL,
		"ZOOM_API_URL":              s.Sim.APIBase(),
		"ZOOM_OAUTH_URL":            s.Sim.URL(),
		"ZOOM_ACCOUNT_ID":           s.Sim.AccountID(),
		"ZOOM_CLIENT_ID":            s.Sim.ClientID(),
		"ZOOM_CLIENT_SECRET":        s.Sim.ClientSecret(),
		"ZOOM_WEBHOOK_SECRET_TOKEN": s.cfg.Sim.WebhookSecret,
		"ZOOM_PACING":               "false",
		"CLARITY_TENANT":            s.cfg.Connector.Tenant,
		"CONNECTOR_ID":              s.cfg.Connector.ID,
		"LOG_LEVEL":                 "info",
		"LOG_FORMAT":                "json",
		"RELAY_INTERVAL":            "50ms",
	}
	if s.cfg.OAuth {
		// The connector's credentials live in the registry, sealed.
		for _, k := range []string{"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET", "ZOOM_WEBHOOK_SECRET_TOKEN"} {
			delete(env, k)
		}
		env["CONNECTOR_SECRETS_KEY"] = s.secretsKey
		env["OAUTH_REDIRECT_URL"] = s.redirectTemplate()
	}
	env[addrVar(name)] = addr
	if f := s.CredsFile(natsauth.Role(name)); f != "" {
		env["NATS_CREDS"] = f
	}
	if name == "webhook" {
		// Every webhook replica takes Zoom's calls on the one public
		// address, so that the simulator's webhook URL stays valid; its
		// health and metrics address, the Proc's Addr, is its own.
		env["WEBHOOK_ADDR"] = s.addrs["webhook"]
		s.mu.Lock()
		if s.AdminURL != "" && !s.adminServed {
			s.adminServed = true
			env["ADMIN_ADDR"] = s.addrs["admin"]
			env["ADMIN_URL"] = s.AdminURL
			env["ADMIN_TOKEN_FILE"] = filepath.Join(s.cfg.Dir, "admin-token")
		}
		s.mu.Unlock()
	}
	for k, v := range s.cfg.Env {
		env[k] = v
	}
	out := os.Environ()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out, nil
}

func addrVar(name string) string {
	switch name {
	case "webhook":
		return "WEBHOOK_OPS_ADDR"
	case "fetcher":
		return "FETCHER_ADDR"
	case "normalizer":
		return "NORMALIZER_ADDR"
	case "writer":
		return "WRITER_ADDR"
	}
	return "ADDR"
}

// addr returns the health and metrics address of a new replica of the
// named service: a free one of its own.
func (s *Stack) addr(string) (string, error) {
	return freeAddr()
}

// Proc is one running service process.
type Proc struct {
	Name string
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// Run starts one replica of a service.
func (s *Stack) Run(name string) (*Proc, error) {
	env, err := s.Env(name)
	if err != nil {
		return nil, err
	}
	var addr string
	for _, kv := range env {
		if len(kv) > len(addrVar(name)) && kv[:len(addrVar(name))+1] == addrVar(name)+"=" {
			addr = kv[len(addrVar(name))+1:]
		}
	}
	s.mu.Lock()
	n := len(s.procs)
	s.mu.Unlock()
	logPath := filepath.Join(s.cfg.Dir, "logs", fmt.Sprintf("%s-%d.log", name, n))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, name))
	cmd.Env = env
	var w io.Writer = lf
	if s.cfg.Log != nil {
		w = io.MultiWriter(lf, s.cfg.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Addr: addr, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	if err := waitHTTP(p, "http://"+addr+"/healthz", 20*time.Second); err != nil {
		return p, fmt.Errorf("%s did not come up: %w (log: %s)", name, err, logPath)
	}
	return p, nil
}

// LogPath is where the process writes its log.
func (p *Proc) LogPath() string { return p.log.Name() }

// Stop sends SIGTERM and waits up to 10 seconds for the process to exit.
// It returns the exit error (nil for status 0).
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 10s of SIGTERM", p.Name)
	}
}

// Kill stops the process abruptly (SIGKILL), losing its in-flight work.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Close stops every process, the simulator and NATS.
func (s *Stack) Close() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Stop() }()
	}
	wg.Wait()
	if s.Sim != nil {
		s.Sim.Close()
	}
	if s.NC != nil {
		s.NC.Close()
	}
	if s.NATS != nil {
		s.NATS.Shutdown()
		s.NATS.WaitForShutdown()
	}
	if s.NATSProc != nil {
		_ = s.NATSProc.Stop()
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func waitHTTP(p *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		resp, err := httpGet(url)
		if err == nil && resp == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s within %s", url, timeout)
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// PeakRSS returns the process's peak resident set size in bytes (VmHWM), or
// 0 when it cannot be read.
func (p *Proc) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// Procs returns the running processes.
func (s *Stack) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// RestartNATS stops the NATS server and starts it again on the same port with
// the same store, as an operator's restart would. down is how long it stays
// away.
func (s *Stack) RestartNATS(down time.Duration) error {
	if s.NATS == nil {
		return errors.New("devstack: RestartNATS restarts the in-process server only")
	}
	port := s.NATS.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(s.cfg.Dir, "nats")
	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()
	time.Sleep(down)
	ns, err := s.startNATS(dir, port)
	if err != nil {
		return err
	}
	s.NATS = ns
	return nil
}
