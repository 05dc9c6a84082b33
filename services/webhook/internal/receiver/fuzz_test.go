package receiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHandler sends the receiver arbitrary requests: it must never panic,
// answer only with the statuses the package documentation lists (200, 400,
// 401, 404, 405, 413 and 503), and publish nothing
// (not even attempt it) unless the signature is valid. When sign is true the
// signature is made right for the fuzzed timestamp and body, so that the
// paths past the signature check get fuzzed too.
func FuzzHandler(f *testing.F) {
	h := newHarness(f, nil)
	f.Add("POST", false, "", "", testTS, "", true, []byte(deactivated))
	f.Add("POST", true, testTenant, testConnector, testTS, "", true, []byte(urlValidation))
	f.Add("POST", true, testTenant, "other", testTS, "", true, []byte(deactivated))
	f.Add("POST", false, "", "", testTS, "v0=00", false, []byte(deactivated))
	f.Add("POST", false, "", "", "1739923000", "", true, []byte(deactivated))
	f.Add("POST", false, "", "", testTS, "", true, []byte(`{"event":`))
	f.Add("POST", false, "", "", testTS, "", true, []byte(`{"event":"x","event_ts":1e400}`))
	f.Add("POST", false, "", "", testTS, "", true, []byte(`{"event":"endpoint.url_validation","payload":{"plainToken":7}}`))
	f.Add("POST", false, "", "", testTS, "", true, bytes.Repeat([]byte("{"), MaxBody+1))
	f.Add("GET", false, "", "", testTS, "", true, []byte(deactivated))
	f.Add("DELETE", true, "a.b", "*", "", "", false, []byte{})
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 413: true, 503: true}

	f.Fuzz(func(t *testing.T, method string, routed bool, tenant, connector, ts, sig string, sign bool, body []byte) {
		req, err := http.NewRequest(method, "http://webhook.test/webhooks/zoom", bytes.NewReader(body))
		if err != nil {
			return // not a method a client could send
		}
		if routed {
			req.SetPathValue("tenant", tenant)
			req.SetPathValue("connector", connector)
		}
		if sign {
			sig = Sign(testSecret, ts, body)
		}
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, sig)

		before := h.pub.calls.Load()
		rec := httptest.NewRecorder()
		h.rc.ServeHTTP(rec, req)

		if !allowed[rec.Code] {
			t.Errorf("status got %d, want one of 200 400 401 404 405 413 503", rec.Code)
		}
		valid := Verify(testSecret, ts, body, sig)
		if published := h.pub.calls.Load() > before; published && !valid {
			t.Errorf("published a notification whose signature is not valid")
		}
		if rec.Code == http.StatusOK && !valid {
			t.Errorf("answered 200 to a notification whose signature is not valid")
		}
	})
}
