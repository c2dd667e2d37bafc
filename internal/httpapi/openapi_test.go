package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/httpapi"
)

// loadOpenAPI loads and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// routeServer is a server with every optional route mounted; its handlers
// are never called.
func routeServer() *httpapi.Server {
	return &httpapi.Server{WebSocket: http.NotFoundHandler(), Streams: http.NotFoundHandler(), Now: time.Now,
		Log: zap.NewNop(), Audit: zap.NewNop(), Metrics: prometheus.NewRegistry()}
}

// TestOpenAPIDocumentValidates: the document is valid OpenAPI 3, and every
// operation says who may call it, answers errors with the error object and
// names its success answer.
func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil || !slices.Equal(errSchema.Value.Required, []string{"code", "message"}) {
		t.Fatalf("components.schemas.Error must be {code, message}: %+v", errSchema)
	}
	bearer := doc.Components.SecuritySchemes["apiKey"]
	if bearer == nil || bearer.Value.Type != "http" || bearer.Value.Scheme != "bearer" {
		t.Fatalf("the security scheme must be HTTP bearer: %+v", bearer)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.Summary == "" || op.OperationID == "" {
				t.Errorf("%s: no summary or operationId", name)
			}
			if !strings.HasPrefix(op.Description, "Roles: ") && !strings.HasPrefix(op.Description, "Public: ") {
				t.Errorf("%s: the description must begin by saying who may call it (Roles: … or Public: …): %q", name, op.Description)
			}
			success := false
			for status, resp := range op.Responses.Map() {
				switch {
				case status[0] == '1' || status[0] == '2':
					success = true
				case path == "/readyz" && status == "503":
					// Readiness answers its own object when not ready.
				case resp.Value.Content["application/json"] == nil && strings.HasPrefix(path, "/ws"):
					// The websocket library answers a failed handshake in
					// plain text.
					if resp.Value.Content["text/plain"] == nil {
						t.Errorf("%s: response %s has neither the error object nor plain text", name, status)
					}
				default:
					mt := resp.Value.Content["application/json"]
					if mt == nil || mt.Schema.Ref != "#/components/schemas/Error" {
						t.Errorf("%s: response %s is not the error object", name, status)
					}
				}
			}
			if !success {
				t.Errorf("%s: no success response", name)
			}
			for _, st := range []int{401, 500} {
				if op.Responses.Status(st) == nil {
					t.Errorf("%s: %d is not documented (every route can answer it)", name, st)
				}
			}
		}
	}
}

// TestOpenAPIDescribesEveryRoute holds the mounted routes against the
// document both ways: every mounted route is documented with its method and
// exact path template, and every documented operation is mounted.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	mounted := map[string]bool{}
	for _, p := range routeServer().Routes() {
		if p == "/" {
			// The catch-all answers UNKNOWN_METHOD for every path nothing
			// else serves: it is not an endpoint.
			continue
		}
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("route %q has no method", p)
			continue
		}
		if mounted[p] {
			t.Errorf("route %q is mounted twice", p)
		}
		mounted[p] = true
		if !documented[method+" "+path] {
			t.Errorf("mounted route %s is not in openapi.json", p)
		}
	}
	for op := range documented {
		if !mounted[op] {
			t.Errorf("openapi.json documents %s, which is not mounted", op)
		}
	}
	if len(mounted) < 50 {
		t.Errorf("only %d routes mounted: Routes does not see them all", len(mounted))
	}
}

// TestOpenAPIServed: GET /openapi.json answers the embedded document as it
// is, without a key.
func TestOpenAPIServed(t *testing.T) {
	srv := httptest.NewServer(routeServer().Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: HTTP %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, httpapi.OpenAPI) || len(body) == 0 {
		t.Fatalf("GET /openapi.json answered %d bytes that are not the embedded document (%d bytes)", len(body), len(httpapi.OpenAPI))
	}
}
