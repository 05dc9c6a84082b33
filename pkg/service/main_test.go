package service

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// panicInRun is a run function that panics a few calls deep, so that the
// stack printed must show where.
func panicInRun(context.Context) error {
	var m map[string]int
	m["boom"]++ // a nil map: the runtime panics, as a bug would
	return nil
}

func TestRunMain(t *testing.T) {
	tests := []struct {
		name     string
		run      func(context.Context) error
		wantCode int
		want     []string // parts of what is written
		wantNone bool     // nothing written
	}{
		{"clean stop", func(context.Context) error { return nil }, 0, nil, true},
		{"error", func(context.Context) error { return errors.New("connect to nats: refused") }, ExitFailed,
			[]string{"svc: connect to nats: refused\n"}, false},
		{"panic", panicInRun, ExitPanic,
			[]string{"svc: panic: assignment to entry in nil map", "service.panicInRun", "main_test.go"}, false},
		{"panic with an error", func(context.Context) error { panic(errors.New("bad state")) }, ExitPanic,
			[]string{"svc: panic: bad state", "runtime/debug.Stack"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := runMain(context.Background(), "svc", tt.run, &out)
			if code != tt.wantCode {
				t.Errorf("exit status got %d, want %d", code, tt.wantCode)
			}
			if tt.wantNone && out.Len() > 0 {
				t.Errorf("got output %q, want none", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output got %q, want it to hold %q", out.String(), w)
				}
			}
		})
	}
}

// TestMainPanicExits runs Main in a child process whose run function
// panics: the process must print the panic and its stack, and exit with
// ExitPanic after run's deferred calls ran.
func TestMainPanicExits(t *testing.T) {
	if os.Getenv("SERVICE_TEST_MAIN_PANIC") == "1" {
		Main("svc", func(context.Context) error {
			defer os.Stdout.WriteString("deferred call ran\n")
			return panicInRun(context.Background())
		})
		return // not reached: Main exits
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainPanicExits$")
	cmd.Env = append(os.Environ(), "SERVICE_TEST_MAIN_PANIC=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != ExitPanic {
		t.Fatalf("child got %v, want exit status %d; stderr:\n%s", err, ExitPanic, stderr.String())
	}
	for _, w := range []string{"svc: panic: assignment to entry in nil map", "service.panicInRun"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr got %q, want it to hold %q", stderr.String(), w)
		}
	}
	if !strings.Contains(stdout.String(), "deferred call ran") {
		t.Errorf("stdout got %q, want the run function's deferred call to have run", stdout.String())
	}
}
