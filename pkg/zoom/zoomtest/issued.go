package zoomtest

// IssuedTokens returns every access token the server has issued, so that a
// test can check that none of them leaks into logs or errors.
func (s *Server) IssuedTokens() []string {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	out := make([]string, 0, len(s.tokens.tokens))
	for tok := range s.tokens.tokens {
		out = append(out, tok)
	}
	return out
}
