package httpapi

import (
	"net/http"
	"slices"
)

// routes is the server's mux that remembers what it mounts, so tests can
// hold the mounted patterns against the OpenAPI document.
type routes struct {
	*http.ServeMux
	patterns []string
}

func newRoutes() *routes { return &routes{ServeMux: http.NewServeMux()} }

// Handle mounts h at pattern ("METHOD /path/{param}") and records it.
func (m *routes) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc mounts f at pattern and records it.
func (m *routes) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, f)
}

// Routes returns the patterns Handler mounts with this configuration, "METHOD /path/{param}", in
// mounting order; the catch-all "/" that answers UNKNOWN_METHOD is among
// them.
func (s *Server) Routes() []string {
	m := s.mux()
	return slices.Clone(m.patterns)
}
