package clarity

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The record kinds and event types are described once, in
// proto/clarity/v1/events.proto; the JSON Schema beside it and the Go types
// here must name the same fields.
func TestSchemaMatchesProtoAndTypes(t *testing.T) {
	proto := protoFields(t, "../../proto/clarity/v1/events.proto")
	b, err := os.ReadFile("../../proto/clarity/v1/events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("events.schema.json: %v", err)
	}
	cases := []struct {
		message string
		goType  []reflect.Type
	}{
		{"ChangeEvent", []reflect.Type{reflect.TypeFor[Event]()}},
		{"ServiceUser", []reflect.Type{reflect.TypeFor[ServiceUser]()}},
		{"Entitlement", []reflect.Type{reflect.TypeFor[Entitlement]()}},
		{"ServiceUserEntitlement", []reflect.Type{reflect.TypeFor[Grant]()}},
		{"ServiceUserAttribute", []reflect.Type{reflect.TypeFor[Attribute]()}},
		{"SyncData", []reflect.Type{reflect.TypeFor[SyncData]()}},
		{"SyncStats", []reflect.Type{reflect.TypeFor[SyncStats]()}},
		{"HeldCounts", []reflect.Type{reflect.TypeFor[HeldCounts]()}},
		{"ProvisioningResult", []reflect.Type{reflect.TypeFor[ProvisionResult]()}},
	}
	if len(cases) != len(proto) {
		t.Errorf("events.proto has %d messages, the test knows %d", len(proto), len(cases))
	}
	for _, c := range cases {
		fromProto, ok := proto[c.message]
		if !ok {
			t.Errorf("events.proto: no message %s", c.message)
			continue
		}
		var fromSchema []string
		if c.message == "ChangeEvent" {
			fromSchema = keys(schema.Properties)
		} else {
			fromSchema = keys(schema.Defs[c.message].Properties)
		}
		var fromGo []string
		for _, typ := range c.goType {
			for f := range typ.Fields() {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				fromGo = append(fromGo, name)
			}
		}
		slices.Sort(fromProto)
		slices.Sort(fromGo)
		if !slices.Equal(fromProto, fromSchema) {
			t.Errorf("%s: events.proto names %v, events.schema.json %v", c.message, fromProto, fromSchema)
		}
		if !slices.Equal(fromProto, fromGo) {
			t.Errorf("%s: events.proto names %v, the Go type %v", c.message, fromProto, fromGo)
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// protoFields reads the field names of each message of a .proto file.
func protoFields(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	message := regexp.MustCompile(`^message (\w+) \{$`)
	field := regexp.MustCompile(`^\s+(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;`)
	out := map[string][]string{}
	current := ""
	for _, line := range strings.Split(string(b), "\n") {
		if m := message.FindStringSubmatch(line); m != nil {
			current = m[1]
			out[current] = []string{}
			continue
		}
		if line == "}" {
			current = ""
			continue
		}
		if m := field.FindStringSubmatch(line); m != nil && current != "" {
			out[current] = append(out[current], m[1])
		}
	}
	return out
}
