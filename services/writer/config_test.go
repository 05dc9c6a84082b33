package main

import (
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

func TestDeleteThreshold(t *testing.T) {
	for _, tc := range []struct {
		value string // "" leaves DELETE_THRESHOLD unset
		want  float64
		bad   bool
	}{
		{"", 0.2, false},
		{"20%", 0.2, false},
		{"0.3", 0.3, false},
		{" 5 % ", 0.05, false},
		{"0", 0, false},
		{"100%", 1, false},
		{"120%", 0, true},
		{"-1", 0, true},
		{"NaN", 0, true},
		{"lots", 0, true},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://localhost/x"}
		if tc.value != "" {
			env["DELETE_THRESHOLD"] = tc.value
		}
		c, err := readConfig(service.EnvFrom(env))
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "DELETE_THRESHOLD") {
				t.Errorf("DELETE_THRESHOLD=%q: got %v, want an error naming it", tc.value, err)
			}
			continue
		}
		if err != nil || c.DeleteThreshold != tc.want {
			t.Errorf("DELETE_THRESHOLD=%q: got %v (%v), want %v", tc.value, c.DeleteThreshold, err, tc.want)
		}
	}
}
