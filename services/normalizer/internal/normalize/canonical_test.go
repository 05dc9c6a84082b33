package normalize

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// stdCanonical is the reference the fast path must match byte for byte.
func stdCanonical(tb testing.TB, v any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		tb.Fatalf("encode %T: %v", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// trickyStrings exercise every branch of appendString.
var trickyStrings = []string{
	"",
	"plain",
	"<b>&amp;</b> > <",
	`quote " and backslash \ and slash /`,
	"\b\f\n\r\t\x00\x01\x1f\x7f",
	"李小龙 Ærøskøbing Zoë 😀🎉 👩‍👩‍👧",
	"line\u2028para\u2029end",
	"bad utf8 \xff\xfe end",
	"truncated \xe6\x9d",
	"\u00e9\u0301 combining",
	"\ufffd already replacement",
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range trickyStrings {
		got := string(appendString(nil, s))
		want := string(stdCanonical(t, s))
		if got != want {
			t.Errorf("appendString(%q): got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		want := stdCanonical(t, s)
		if !bytes.Equal(got, want) {
			t.Errorf("appendString(%q): got %s, want %s", s, got, want)
		}
	})
}

// fill sets every string field of the struct *p to a distinct value built
// from s, so that a field added to a clarity struct but not to its append
// function makes the outputs differ.
func fill(tb testing.TB, p any, s string) {
	tb.Helper()
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.String {
			tb.Fatalf("%s.%s is a %s: teach the fast path about it", v.Type(), v.Type().Field(i).Name, f.Kind())
		}
		f.SetString(s + strconv.Itoa(i))
	}
}

func TestCanonicalFastPathMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range append(trickyStrings, "") {
		var (
			u clarity.ServiceUser
			e clarity.Entitlement
			g clarity.Grant
			a clarity.Attribute
		)
		fill(t, &u, s)
		fill(t, &e, s)
		fill(t, &g, s)
		fill(t, &a, s)
		// The omitempty fields must also be checked when empty.
		uEmpty := u
		uEmpty.CreatedAt, uEmpty.LastLoginAt = "", ""
		uZero := clarity.ServiceUser{}
		for _, v := range []any{u, &u, uEmpty, uZero, e, &e, clarity.Entitlement{}, g, &g, a, &a} {
			got, err := Canonical(v)
			if err != nil {
				t.Fatalf("Canonical(%#v): %v", v, err)
			}
			if want := stdCanonical(t, v); !bytes.Equal(got, want) {
				t.Errorf("Canonical(%#v):\n got %s\nwant %s", v, got, want)
			}
		}
	}
}

func TestCanonicalOtherValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"map keys sorted, html kept", map[string]string{"b": "<&>", "a": "x"}, `{"a":"x","b":"<&>"}`},
		{"nil pointer", (*clarity.ServiceUser)(nil), `null`},
		{"slice", []int{1, 2}, `[1,2]`},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.v)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := Canonical(make(chan int)); err == nil {
		t.Errorf("Canonical(chan): got nil error, want one")
	}
}

func TestNewRecord(t *testing.T) {
	t.Parallel()
	e := clarity.Entitlement{ID: "role:2", Type: "role", ZoomID: "2", Name: "Member"}
	r, err := NewRecord(pb.Kind_KIND_ENTITLEMENT, e.ID, e)
	if err != nil {
		t.Fatal(err)
	}
	want := EntitlementRecord(&e)
	if r.GetKind() != want.GetKind() || r.GetKey() != want.GetKey() || !bytes.Equal(r.GetData(), want.GetData()) || !bytes.Equal(r.GetHash(), want.GetHash()) {
		t.Errorf("NewRecord: got %v, want %v", r, want)
	}
	if len(r.GetHash()) != 0 {
		t.Errorf("hash: got %x, want none (the writer computes it)", r.GetHash())
	}
}
