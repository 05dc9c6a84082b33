package devstack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Postgres is a throwaway PostgreSQL cluster in a directory of its own.
type Postgres struct {
	dir   string
	pgCtl string
	port  int
	opts  PostgresOptions
	URL   string
}

// PostgresOptions are the settings of a throwaway cluster that its user
// may choose.
type PostgresOptions struct {
	// SharedBuffersMiB is the buffer cache's size; 1024 when 0.
	SharedBuffersMiB int
	// Statements preloads pg_stat_statements.
	Statements bool
}

// StartPostgres creates a cluster in dir with initdb (when dir holds none)
// and starts it on a free loopback port, with the default options. As root,
// the server runs as the postgres user, since PostgreSQL refuses to run as
// root.
func StartPostgres(dir string) (*Postgres, error) {
	return StartPostgresWith(dir, PostgresOptions{})
}

// StartPostgresWith is StartPostgres with options o.
func StartPostgresWith(dir string, o PostgresOptions) (*Postgres, error) {
	initdb, err := pgBinary("initdb")
	if err != nil {
		return nil, err
	}
	pgCtl, err := pgBinary("pg_ctl")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// The postgres user must be able to reach dir; a temporary parent
		// made by MkdirTemp is private to root.
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.Command("chown", "-R", "postgres", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown %s to postgres: %v: %s", dir, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if out, err := asOwner(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out))
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	p := &Postgres{dir: dir, pgCtl: pgCtl, port: port, opts: o,
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Postgres) start() error {
	buffers := p.opts.SharedBuffersMiB
	if buffers <= 0 {
		buffers = 1024
	}
	opts := "-p " + strconv.Itoa(p.port) + " -k " + p.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=" + strconv.Itoa(buffers) + "MB"
	if p.opts.Statements {
		opts += " -c shared_preload_libraries=pg_stat_statements"
	}
	if out, err := asOwner(p.pgCtl, "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "30", "-o", opts, "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, lastLines(out))
	}
	return nil
}

// Restart stops the cluster (fast shutdown: open sessions are ended, as in
// an operator's restart), waits down, and starts it again on the same port,
// so that URL stays valid for every client.
func (p *Postgres) Restart(down time.Duration) error {
	if err := p.Stop(); err != nil {
		return err
	}
	time.Sleep(down)
	return p.start()
}

// Stop shuts the cluster down.
func (p *Postgres) Stop() error {
	out, err := asOwner(p.pgCtl, "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out))
	}
	return nil
}

func pgBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found: install PostgreSQL (apt-get install postgresql) or set DATABASE_URL", name)
}

func asOwner(bin string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
