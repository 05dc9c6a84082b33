package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
)

// The NATS server of a stack runs inside the process that starts the stack,
// or, with Config.NATSProcess, as a process of its own: zoomctl's hidden
// verb NATSVerb, which starts the same embedded server (NATSServerConfig)
// and prints its client URL. The bench runs it apart so that the server's
// memory and CPU are measured apart from the simulator's.

// NATSVerb is zoomctl's hidden verb that runs a stack's NATS server.
const NATSVerb = "nats-server"

// NATSProcName is the Proc name of a NATS server run as its own process.
const NATSProcName = "nats-server"

// natsURLPrefix starts the one line the verb prints once it is ready.
const natsURLPrefix = "nats-server ready: "

// NATSServerConfig is the embedded server of a stack: its JetStream store
// directory, its port (0: a free one), and the server configuration file
// of a secured stack ("" when it has none). The payload limit is the
// deployment's (natstest.MaxPayload). CPUProfile, when set, is where
// ServeNATS writes a CPU profile of its process, from the server's start
// to its stop.
type NATSServerConfig struct {
	StoreDir   string
	Port       int
	ConfigFile string
	CPUProfile string
}

// StartNATSServer starts the embedded server as cfg describes.
func StartNATSServer(cfg NATSServerConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("nats server: no store directory")
	}
	if cfg.ConfigFile == "" {
		return natstest.Start(cfg.StoreDir, cfg.Port)
	}
	return natstest.StartWithConfig(cfg.StoreDir, cfg.Port, cfg.ConfigFile)
}

// ServeNATS runs the embedded server until ctx ends (zoomctl stops it on
// SIGTERM or SIGINT), then shuts it down and waits for its store to be
// closed. Once the server takes connections it writes one line, with its
// client URL, to ready.
func ServeNATS(ctx context.Context, cfg NATSServerConfig, ready io.Writer) (err error) {
	if cfg.CPUProfile != "" {
		f, perr := os.Create(cfg.CPUProfile)
		if perr != nil {
			return fmt.Errorf("cpu profile: %w", perr)
		}
		if perr := pprof.StartCPUProfile(f); perr != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", perr)
		}
		// Deferred first, run last: after the server's shutdown.
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("cpu profile: %w", cerr)
			}
		}()
	}
	ns, err := StartNATSServer(cfg)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if _, err := fmt.Fprintln(ready, natsURLPrefix+ns.ClientURL()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// natsServerConfig is the configuration of the stack's server, its store
// in dir.
func (s *Stack) natsServerConfig(dir string, port int) NATSServerConfig {
	c := NATSServerConfig{StoreDir: dir, Port: port, CPUProfile: s.cfg.NATSCPUProfile}
	if s.cfg.Secured {
		c.ConfigFile = filepath.Join(s.CredsDir(), natsauth.FileServerConfig)
	}
	return c
}

// natsStartTimeout bounds how long the NATS process takes to be ready: a
// store recovered at start is read in full first.
const natsStartTimeout = 60 * time.Second

// startNATSProcess runs the stack's server as zoomctl's NATSVerb from the
// stack's BinDir, its log in the stack's logs, and returns the process and
// the server's client URL.
func (s *Stack) startNATSProcess(cfg NATSServerConfig) (*Proc, string, error) {
	logPath := filepath.Join(s.cfg.Dir, "logs", NATSProcName+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	args := []string{NATSVerb, "--store", cfg.StoreDir, "--port", fmt.Sprint(cfg.Port)}
	if cfg.ConfigFile != "" {
		args = append(args, "--config", cfg.ConfigFile)
	}
	if cfg.CPUProfile != "" {
		args = append(args, "--cpuprofile", cfg.CPUProfile)
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, "zoomctl"), args...)
	ready := &readyLine{w: lf, line: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = ready, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("start %s: %w", NATSProcName, err)
	}
	p := &Proc{Name: NATSProcName, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	select {
	case line := <-ready.line:
		url, ok := strings.CutPrefix(line, natsURLPrefix)
		if !ok || !strings.HasPrefix(url, "nats://") {
			_ = p.Stop()
			return nil, "", fmt.Errorf("%s: unexpected first line %q (log: %s)", NATSProcName, line, logPath)
		}
		p.Addr = strings.TrimPrefix(url, "nats://")
		return p, url, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready: %v (log: %s)", NATSProcName, p.err, logPath)
	case <-time.After(natsStartTimeout):
		_ = p.Stop()
		return nil, "", fmt.Errorf("%s not ready within %s (log: %s)", NATSProcName, natsStartTimeout, logPath)
	}
}

// readyLine passes what the NATS process prints on to w, and its first
// line to the line channel.
type readyLine struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	sent bool
	line chan string
}

func (r *readyLine) Write(b []byte) (int, error) {
	r.mu.Lock()
	if !r.sent {
		r.buf = append(r.buf, b...)
		if i := bytes.IndexByte(r.buf, '\n'); i >= 0 {
			r.line <- string(r.buf[:i])
			r.sent, r.buf = true, nil
		} else if len(r.buf) > 4096 {
			r.line <- string(r.buf[:4096])
			r.sent, r.buf = true, nil
		}
	}
	r.mu.Unlock()
	return r.w.Write(b)
}
