package runner

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

func TestBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 10, ""},
		{"short", 10, "short"},
		{"bad \xff", 10, "bad \uFFFD"},
	} {
		if got := bound(tc.in, tc.n); got != tc.want {
			t.Errorf("bound(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	for _, in := range []string{strings.Repeat("a", 5000), strings.Repeat("€", 5000), strings.Repeat("a\xff", 5000)} {
		got := bound(in, maxErrorText)
		if len(got) > maxErrorText || !utf8.ValidString(got) || !strings.Contains(got, "truncated from") {
			t.Errorf("bound of %d bytes: %d bytes (valid UTF-8: %t), want at most %d, marked", len(in), len(got), utf8.ValidString(got), maxErrorText)
		}
	}
}

// TestSmallerEnd: an end NATS refuses for its size gives way to the run's
// failure, then to a failure naming fewer triggers, then to nothing.
func TestSmallerEnd(t *testing.T) {
	t.Parallel()
	tooLarge := errors.New("nats: maximum payload exceeded")
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = "request-" + strconv.Itoa(i)
	}
	run := &pb.Run{RunId: "r1", RequestIds: ids}
	fetched := &pb.Envelope{Body: &pb.Envelope_RunFetched{RunFetched: &pb.RunFetched{Run: run, ApiRequests: 7}}}

	first := smallerEnd(fetched, 7, tooLarge)
	f := first.GetRunFailed()
	if f == nil || f.Run.RunId != "r1" || len(f.Run.RequestIds) != len(ids) || f.ApiRequests != 7 ||
		!strings.Contains(f.Error, "could not be published: nats: maximum payload exceeded") {
		t.Fatalf("instead of the manifest: %v, want the run's failure saying why", first)
	}
	second := smallerEnd(first, 7, tooLarge)
	f2 := second.GetRunFailed()
	if f2 == nil || len(f2.Run.RequestIds) != maxEndRequestIDs || f2.Run.RequestIds[0] != "request-0" ||
		!strings.Contains(f2.Error, "3000 triggers") || !strings.Contains(f2.Error, "could not be published") {
		t.Fatalf("instead of the failure: %v, want it naming the first %d triggers", second, maxEndRequestIDs)
	}
	if len(run.RequestIds) != len(ids) {
		t.Errorf("the run's own request ids were cut to %d", len(run.RequestIds))
	}
	if third := smallerEnd(second, 7, tooLarge); third != nil {
		t.Errorf("instead of the smallest failure: %v, want nothing", third)
	}
}
