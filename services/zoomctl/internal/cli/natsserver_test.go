package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
)

// natsVerb runs zoomctl nats-server with args until the returned stop is
// called, and returns the client URL it printed and stop, which returns
// its exit code.
func natsVerb(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	var errw bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, append([]string{"nats-server"}, args...), w, &errw)
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no ready line: %v (exit %d, stderr %q)", err, <-code, errw.String())
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "nats-server ready: ")
	if !ok || !strings.HasPrefix(url, "nats://127.0.0.1:") {
		cancel()
		t.Fatalf("ready line %q", line)
	}
	go io.Copy(io.Discard, r) //nolint:errcheck
	stop := func() int {
		cancel()
		select {
		case c := <-code:
			if c != ExitOK {
				t.Logf("stderr: %s", errw.String())
			}
			return c
		case <-time.After(30 * time.Second):
			t.Fatal("nats-server did not stop within 30 s of its context's end")
			return -1
		}
	}
	return url, stop
}

// TestNATSServerVerb runs the hidden verb as the bench does: it serves
// JetStream with the deployment's payload limit from its store, and stops
// cleanly, its store intact, when told to.
func TestNATSServerVerb(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	profile := filepath.Join(t.TempDir(), "nats.pprof")
	url, stop := natsVerb(t, "--store", store, "--cpuprofile", profile)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != natstest.MaxPayload {
		t.Errorf("max payload %d, want %d", got, natstest.MaxPayload)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.big", make([]byte, natstest.MaxPayload-1024)); err != nil {
		t.Fatalf("a message under the limit: %v", err)
	}
	if err := nc.Publish("t.bigger", make([]byte, natstest.MaxPayload+1)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("a message over the limit: got %v, want %v", err, nats.ErrMaxPayload)
	}
	nc.Close()
	if code := stop(); code != ExitOK {
		t.Fatalf("exit %d after its stop, want %d", code, ExitOK)
	}
	// The profile is complete once it stopped: a gzipped protobuf.
	if b, err := os.ReadFile(profile); err != nil || len(b) < 20 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("CPU profile: %d bytes, %v; want a gzipped profile", len(b), err)
	}

	// Started again on the same store, it has the stream and its message.
	url, stop = natsVerb(t, "--store", store)
	defer stop()
	nc, err = nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("after a restart the stream holds %d messages, want 1", info.State.Msgs)
	}
}

// TestNATSServerVerbSecured: with --config, the deployment's
// authorization applies: a role's credentials connect, none do not.
func TestNATSServerVerbSecured(t *testing.T) {
	creds := t.TempDir()
	if _, err := natsauth.Init(creds); err != nil {
		t.Fatal(err)
	}
	url, stop := natsVerb(t, "--store", t.TempDir(), "--config", filepath.Join(creds, natsauth.FileServerConfig))
	defer stop()
	if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("connected without credentials")
	}
	nc, err := nats.Connect(url, nats.NoReconnect(), nats.UserCredentials(filepath.Join(creds, natsauth.CredsFile(natsauth.RoleOperator))))
	if err != nil {
		t.Fatalf("with the operator's credentials: %v", err)
	}
	nc.Close()
}

func TestNATSServerVerbUsage(t *testing.T) {
	var out, errw bytes.Buffer
	if code := Main(context.Background(), []string{"nats-server"}, &out, &errw); code != ExitUsage {
		t.Errorf("without --store: exit %d, want %d", code, ExitUsage)
	}
	if code := Main(context.Background(), []string{"nats-server", "--store", t.TempDir(), "--port", "70000"}, &out, &errw); code != ExitUsage {
		t.Errorf("--port 70000: exit %d, want %d", code, ExitUsage)
	}
	var help bytes.Buffer
	Main(context.Background(), []string{"--help"}, &help, &help)
	if strings.Contains(help.String(), "nats-server") {
		t.Error("zoomctl --help lists the hidden verb")
	}
}
