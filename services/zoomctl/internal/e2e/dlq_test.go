package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestDeadLetters sends poison into the pipeline: an undecodable raw page and
// a record batch the writer rejects. Both land in the dead-letter stream
// with their reason, a sync behind them completes exactly, and zoomctl dlq
// lists them and replays them.
func TestDeadLetters(t *testing.T) {
	org := zoomtest.Generate(9, zoomtest.Size{Users: 200, Groups: 5, Roles: 4})
	s := startStack(t, org, zoomtest.Options{}, map[string]int{"webhook": 0})
	c := collect(t, s)
	ctx := context.Background()
	cfg := s.Config()

	if _, err := s.JS.Publish(ctx, pipeline.RawSubject(cfg.Connector), []byte("not a protobuf \xff\xfe")); err != nil {
		t.Fatal(err)
	}
	bad, _ := proto.Marshal(&pb.Envelope{Tenant: cfg.Connector.Tenant, Connector: cfg.Connector.ID, Body: &pb.Envelope_Records{
		Records: &pb.RecordBatch{VersionMs: 1, Records: []*pb.Record{{Kind: pb.Kind(99), Key: "x", Data: []byte(`{}`)}}}}})
	if _, err := s.JS.Publish(ctx, pipeline.RecordsSubject(cfg.Connector), bad); err != nil {
		t.Fatal(err)
	}
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync behind poison: got %s (%s), want completed", op, d.Error)
	}
	requireSame(t, "records behind poison", c.snapshot(), expected(s))

	t.Setenv("NATS_URL", s.NATSURL)
	var out, errw bytes.Buffer
	waitFor(t, 10*time.Second, func() bool {
		out.Reset()
		return cli.Main(ctx, []string{"dlq", "list"}, &out, &errw) == cli.ExitOK &&
			strings.Contains(out.String(), "ZOOM_RAW") && strings.Contains(out.String(), "ZOOM_RECORDS")
	})
	list := out.String()
	for _, want := range []string{"invalid envelope", "invalid batch"} {
		if !strings.Contains(list, want) {
			t.Errorf("dlq list lacks the reason %q:\n%s", want, list)
		}
	}
	out.Reset()
	if code := cli.Main(ctx, []string{"dlq", "replay", "--all", "--stream", "ZOOM_RAW"}, &out, &errw); code != cli.ExitOK {
		t.Fatalf("dlq replay: exit %d: %s %s", code, out.String(), errw.String())
	}
	// The replayed poison fails again and comes back: still one in the stream.
	t.Logf("replay: %s", out.String())
	waitFor(t, 10*time.Second, func() bool {
		out.Reset()
		cli.Main(ctx, []string{"dlq", "list", "--stream", "ZOOM_RAW"}, &out, &errw)
		return strings.Count(out.String(), "invalid envelope") == 1
	})
	t.Logf("after replay:\n%s", out.String())
}
