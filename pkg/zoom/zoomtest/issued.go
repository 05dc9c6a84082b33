package zoomtest

// IssuedTokens returns every access and refresh token the server still
// holds, of every account, so that a test can check that none of them leaks
// into logs or errors.
func (s *Server) IssuedTokens() []string {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	out := make([]string, 0, len(s.tokens.access)+len(s.tokens.refresh))
	for tok := range s.tokens.access {
		out = append(out, tok)
	}
	for tok := range s.tokens.refresh {
		out = append(out, tok)
	}
	return out
}
