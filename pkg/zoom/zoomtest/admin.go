package zoomtest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// AdminHandler serves the simulator's own control API under /_sim/, for the
// zoomsim binary and for tests that drive a simulator over HTTP:
//
//	GET    /_sim/requests   {"total":N,"routes":{"GET /users":3,…},"statuses":{"GET /users 200":3,…}}
//	DELETE /_sim/requests   reset the counts
//	POST   /_sim/mutate?n=5 apply n random mutations; answers {"deliveries":[…]}
//	GET    /_sim/faults     {"faults":[…],"credentials_revoked":false}
//	POST   /_sim/faults     apply a FaultsRequest; answers like GET
//	DELETE /_sim/faults     clear every fault
//	GET    /_sim/expected   the oracle's records (Expected), one JSON object a line
//	GET    /_sim/org        the organisation as JSON
//	GET    /_sim/events     the webhook notifications made so far
//	PUT    /_sim/webhook    {"url":"…"} sets the webhook URL ("" stops notifications)
//
// It has no authentication: never expose it beyond a test network.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"total": s.TotalRequests(), "routes": s.Requests(), "statuses": s.RequestsByStatus(),
		})
	})
	mux.HandleFunc("DELETE /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/mutate", func(w http.ResponseWriter, r *http.Request) {
		n := 1
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 || n > 100000 {
				writeError(w, http.StatusBadRequest, 300, "n must be an integer from 0 to 100000.")
				return
			}
		}
		// One random stream for the server, so that a run's mutations can
		// be replayed from Options.Seed; the lock keeps it consistent.
		s.rngMu.Lock()
		ds, err := s.RandomMutations(r.Context(), s.rng, n)
		s.rngMu.Unlock()
		if err != nil {
			writeError(w, http.StatusInternalServerError, 500, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNil(ds)})
	})
	faults := func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]any{
			"faults": s.faults.List(), "credentials_revoked": s.faults.CredentialsRevoked(),
		})
	}
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) { faults(w) })
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.faults.Clear()
		faults(w)
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var req FaultsRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, 300, "invalid faults request: "+err.Error())
			return
		}
		s.faults.Do(req)
		faults(w)
	})
	mux.HandleFunc("GET /_sim/expected", func(w http.ResponseWriter, r *http.Request) {
		recs := Expected(s.Org())
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				return // the client went away
			}
		}
	})
	mux.HandleFunc("GET /_sim/org", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Org())
	})
	mux.HandleFunc("GET /_sim/events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(s.Events())})
	})
	mux.HandleFunc("PUT /_sim/webhook", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			URL string `json:"url"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, 300, "invalid webhook request: "+err.Error())
			return
		}
		s.SetWebhookURL(req.URL)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// FaultsRequest is a batch of fault operations, the body of POST
// /_sim/faults. Operations run in the order of the fields: clear, remove,
// add, then the switches.
type FaultsRequest struct {
	Clear              bool    `json:"clear,omitempty"`
	Remove             []int   `json:"remove,omitempty"`
	Add                []Fault `json:"add,omitempty"`
	ExpireTokens       bool    `json:"expire_tokens,omitempty"`
	ExpirePageTokens   bool    `json:"expire_page_tokens,omitempty"`
	RevokeCredentials  bool    `json:"revoke_credentials,omitempty"`
	RestoreCredentials bool    `json:"restore_credentials,omitempty"`
}

// Do applies a FaultsRequest and returns the ids of the rules it added.
func (f *Faults) Do(req FaultsRequest) []int {
	if req.Clear {
		f.Clear()
	}
	for _, id := range req.Remove {
		f.Remove(id)
	}
	var ids []int
	for _, rule := range req.Add {
		ids = append(ids, f.Add(rule))
	}
	if req.ExpireTokens {
		f.ExpireTokens()
	}
	if req.ExpirePageTokens {
		f.ExpirePageTokens()
	}
	if req.RevokeCredentials {
		f.RevokeCredentials()
	}
	if req.RestoreCredentials {
		f.RestoreCredentials()
	}
	return ids
}
