package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of the REST API, served at
// GET /openapi.json. It is written by hand; change it with the routes and
// the types they encode. The tests hold it against the mounted routes
// (TestOpenAPIDescribesEveryRoute), the Go types the handlers decode and
// encode (TestOpenAPISchemasMatchGoTypes) and the real service's answers
// to every operation (cmd/satu's TestOpenAPIResponses).
//
//go:embed openapi.json
var OpenAPI []byte

// serveOpenAPI answers the document as it is embedded; it needs no key.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}
