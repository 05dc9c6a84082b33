package zoom

import (
	"testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	var u struct {
		Users []User `json:"users"`
		Next  string `json:"next_page_token"`
	}
	body := []byte(`{"next_page_token":"a","users":[{"id":"u1","email":"x@example.com","dept":"Sa` + "\xff" +
		`les","type":1,"type":2,"verified":1}],"next_page_token":"b","extra":{"x":[1,2]}}`)
	if err := Decode(body, &u); err != nil {
		t.Fatal(err)
	}
	if u.Next != "b" || len(u.Users) != 1 {
		t.Fatalf("got %+v, want the last next_page_token and one user", u)
	}
	got := u.Users[0]
	if got.ID != "u1" || got.Email != "x@example.com" || got.Type != 2 || got.Verified == nil || *got.Verified != 1 {
		t.Errorf("got user %+v", got)
	}
	if got.Dept != "Sa\uFFFDles" {
		t.Errorf("got dept %q, want invalid UTF-8 replaced", got.Dept)
	}
	// Names match as Zoom documents them, not in another case.
	var p pageProbe
	if err := Decode([]byte(`{"Users":[{}],"NEXT_PAGE_TOKEN":"x"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Users != nil || p.NextPageToken != "" {
		t.Errorf("got %+v from miscased names, want nothing matched", p)
	}
	for _, bad := range []string{``, `{`, `{"users":[}`, `{"users":1}`, `{} {}`, `{"users":[{"type":"1"}]}`} {
		if err := Decode([]byte(bad), &u); err == nil {
			t.Errorf("Decode(%q): got no error", bad)
		}
	}
}
