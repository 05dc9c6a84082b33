package natsauth

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The README's permissions table is the one WriteTable writes: a change to
// a role's permissions changes the table, and the README with it.
func TestREADMEHoldsThePermissionsTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, bytes.TrimSpace(table.Bytes())) {
		t.Error("README.md does not hold the permissions table WriteTable writes; replace it with the output of `zoomctl creds table`")
	}
}
