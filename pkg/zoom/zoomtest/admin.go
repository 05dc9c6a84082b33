package zoomtest

import (
	"encoding/json"
	"net/http"
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
// Those act on the default account (the faults' rules on every request);
// these on any account, the default included, by its id:
//
//	GET    /_sim/accounts                    {"accounts":[AccountInfo…]}, the default first
//	POST   /_sim/accounts                    an AccountRequest; answers 201 AccountInfo (409 when the id is taken)
//	GET    /_sim/accounts/{id}               AccountInfo
//	GET    /_sim/accounts/{id}/org           the organisation as JSON
//	GET    /_sim/accounts/{id}/expected      the oracle's records, one JSON object a line
//	GET    /_sim/accounts/{id}/events        the account's webhook notifications
//	GET    /_sim/accounts/{id}/requests      the account's request counts, shaped like /_sim/requests, and "writes" (WriteRequests)
//	PUT    /_sim/accounts/{id}/seats         {"licensed":N,"silent":false}: at most N Licensed users (SeatLimit); N 0 lifts the limit
//	GET    /_sim/accounts/{id}/tokens        TokenStats: tokens issued, rotations, reuses, revocations
//	PUT    /_sim/accounts/{id}/webhook       {"url":"…","secret":"…"} (no "secret": unchanged)
//	PUT    /_sim/accounts/{id}/rate-limits   {"light":30,"medium":20,"heavy":10}
//	PUT    /_sim/accounts/{id}/plan          {"plan":"basic"} (free: groups and roles refused), "pro" or "business"
//	POST   /_sim/accounts/{id}/mutate?n=5    n random mutations of the account
//	GET    /_sim/accounts/{id}/faults        the account's rules and credentials_revoked
//	POST   /_sim/accounts/{id}/faults        a FaultsRequest whose rules match the account's requests only
//	DELETE /_sim/accounts/{id}/faults        clear the account's rules, restore its credentials
//	GET    /_sim/accounts/{id}/apps          {"apps":[AppInfo…]}, the account's OAuth apps
//	POST   /_sim/accounts/{id}/apps          an AppRequest; answers 201 AppInfo with the client secret
//	GET    /_sim/accounts/{id}/apps/{clientId}
//	POST   /_sim/accounts/{id}/apps/{clientId}/revoke       end the app's grants; {"revoked":N}
//	POST   /_sim/accounts/{id}/apps/{clientId}/deauthorize  uninstall it; {"delivery":{…}} of app_deauthorized
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
		s.mutateRoute(w, r, s.def)
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
		writeExpected(w, s.Org())
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
	s.accountRoutes(mux)
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
