package auth

// ForgetEdges drops every cached edge token. A control plane sharing its
// database with other replicas calls it when its change feed was lost: an
// edge deleted or rotated meanwhile on another replica was not announced
// to this one.
func (s *Service) ForgetEdges() {
	s.edges.mu.Lock()
	defer s.edges.mu.Unlock()
	clear(s.edges.m)
}
