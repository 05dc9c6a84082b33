package natsauth

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteTable writes the permissions of every role as a Markdown table:
// the subjects each may publish to and subscribe to, and the JetStream
// streams, consumers and buckets its API calls reach.
func WriteTable(w io.Writer) error {
	fmt.Fprintln(w, "| role | publish | subscribe | JetStream (API calls allowed) |")
	fmt.Fprintln(w, "|---|---|---|---|")
	row := func(name string, p Permissions) {
		var pub, js []string
		publish := p.Publish
		if create := streamCreate(allStreams()...); containsAll(publish, create) {
			publish = slices.DeleteFunc(slices.Clone(publish), func(s string) bool { return slices.Contains(create, s) })
			js = append(js, "create every missing stream (info, create)")
		}
		for _, s := range publish {
			if item, ok := jetStreamItem(s); ok {
				js = append(js, item)
			} else {
				pub = append(pub, "`"+s+"`")
			}
		}
		for _, s := range p.PublishDeny {
			if item, ok := jetStreamItem(s); ok {
				js = append(js, "not "+item)
			}
		}
		sub := make([]string, len(p.Subscribe))
		for i, s := range p.Subscribe {
			sub[i] = "`" + s + "`"
		}
		if p.Responses {
			sub = append(sub, "replies to the requests it receives")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, strings.Join(pub, ", "), strings.Join(sub, ", "),
			strings.Join(merge(js), "; "))
	}
	for _, r := range Roles {
		p, err := PermissionsOf(r)
		if err != nil {
			return err
		}
		row(string(r), p)
	}
	p, err := TenantPermissions("acme", "app")
	if err != nil {
		return err
	}
	row("tenant consumer (here tenant `acme`, consumer `app`)", p)
	return nil
}

// jetStreamItem describes a JetStream API, acknowledgement or key-value
// subject, and reports whether s is one.
func jetStreamItem(s string) (string, bool) {
	switch {
	case s == jsAPI+">":
		return "every API call", true
	case s == jsAPI+"INFO":
		return "account info", true
	case strings.HasPrefix(s, "$KV."):
		return "bucket " + strings.TrimSuffix(strings.TrimPrefix(s, "$KV."), ".>") + ": read, write, watch, create", true
	case strings.HasPrefix(s, "$JS.ACK.") || strings.HasPrefix(s, "$JS.FC."):
		if s == "$JS.ACK.>" {
			return "acknowledge any consumer's messages", true
		}
		return "", true // implied by the consumer
	case strings.HasPrefix(s, jsAPI+"STREAM."):
		t := strings.Split(strings.TrimPrefix(s, jsAPI+"STREAM."), ".")
		if len(t) < 2 {
			return "", true
		}
		op := strings.ToLower(strings.Join(t[:len(t)-1], " "))
		if b, ok := strings.CutPrefix(t[len(t)-1], "KV_"); ok {
			if op == "update" {
				return "bucket " + b + ": update its configuration", true
			}
			return "", true // implied by the bucket
		}
		if op == "update" {
			op = "update its configuration"
		}
		return "stream " + t[len(t)-1] + ": " + op, true
	case strings.HasPrefix(s, jsAPI+"CONSUMER."):
		rest := strings.TrimPrefix(s, jsAPI+"CONSUMER.")
		for _, op := range []string{"DURABLE.CREATE.", "CREATE.", "INFO.", "DELETE.", "MSG.NEXT."} {
			if tail, ok := strings.CutPrefix(rest, op); ok {
				stream, cons, _ := strings.Cut(tail, ".")
				if strings.HasPrefix(stream, "KV_") {
					return "", true // a bucket's watchers, implied by the bucket
				}
				cons, filter, _ := strings.Cut(cons, ".")
				switch {
				case cons == "*" && filter != "":
					return "consumers of " + stream + " filtered within `" + filter + "`", true
				case cons == "*" || cons == ">":
					return "consumers of " + stream + " it names: " + strings.ToLower(strings.TrimSuffix(op, ".")), true
				}
				return "durable consumer " + stream + "/" + cons, true
			}
		}
		return "", true
	case strings.HasPrefix(s, "$JS."):
		return "", true
	}
	return "", false
}

// merge sorts items, drops empty ones and repeats, and joins the
// operations on one stream or consumer ("stream S: info", "stream S:
// create" → "stream S: info, create").
func merge(items []string) []string {
	var out []string
	ops := map[string][]string{}
	for _, it := range slices.Compact(slices.Sorted(slices.Values(items))) {
		if it == "" {
			continue
		}
		what, op, ok := strings.Cut(it, ": ")
		if !ok {
			out = append(out, it)
			continue
		}
		if _, seen := ops[what]; !seen {
			out = append(out, what)
		}
		ops[what] = append(ops[what], op)
	}
	for i, it := range out {
		if o, ok := ops[it]; ok {
			out[i] = it + ": " + strings.Join(o, ", ")
		}
	}
	return out
}

// containsAll reports whether list holds every item of want.
func containsAll(list, want []string) bool {
	for _, w := range want {
		if !slices.Contains(list, w) {
			return false
		}
	}
	return true
}
