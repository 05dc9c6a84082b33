package devstack

import (
	"io"
	"net/http"
	"time"
)

var client = &http.Client{Timeout: 2 * time.Second}

func httpGet(url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
