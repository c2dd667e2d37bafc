package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
)

// Proofs is what the API needs of the transparency log (compliance/postgres).
type Proofs interface {
	Checkpoint(ctx context.Context, signer note.Signer) (compliancepg.StoredCheckpoint, error)
	LatestCheckpoint(ctx context.Context) (compliancepg.StoredCheckpoint, error)
	CheckpointAt(ctx context.Context, size int64) (compliancepg.StoredCheckpoint, error)
	InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error)
	ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error)
	Certificate(ctx context.Context, obligationID int64, signer note.Signer) (proof.Certificate, error)
}

// proofRoutes mounts the log's checkpoints and proofs — public: they reveal
// hashes only, and a witness must be able to fetch them — and the
// certificates, which are the obligation's readers'.
func (s *Server) proofRoutes(mux *routes) {
	mux.HandleFunc("GET /v1/proof/checkpoint", s.handle(s.checkpoint))
	mux.HandleFunc("GET /v1/proof/inclusion", s.handle(s.inclusion))
	mux.HandleFunc("GET /v1/proof/consistency", s.handle(s.consistency))
	mux.HandleFunc("POST /v1/operator/proof/checkpoint", s.handle(operator(func(r *http.Request) (int, any, error) {
		cp, err := s.Proofs.Checkpoint(r.Context(), s.LogSigner)
		return http.StatusOK, cp, err
	})))
	mux.HandleFunc("GET /v1/regulator/obligations/{id}/certificate", s.handle(s.certificate))
}

// checkpoint answers the newest checkpoint, or the one of ?size=.
func (s *Server) checkpoint(r *http.Request) (int, any, error) {
	if v := r.URL.Query().Get("size"); v != "" {
		size, err := int64Param("size", v)
		if err != nil {
			return 0, nil, err
		}
		cp, err := s.Proofs.CheckpointAt(r.Context(), size)
		return http.StatusOK, cp, err
	}
	cp, err := s.Proofs.LatestCheckpoint(r.Context())
	if apperr.CodeOf(err) == apperr.InvalidParameter { // none yet: sign the first
		cp, err = s.Proofs.Checkpoint(r.Context(), s.LogSigner)
	}
	return http.StatusOK, cp, err
}

func (s *Server) inclusion(r *http.Request) (int, any, error) {
	index, err := int64Param("index", r.URL.Query().Get("index"))
	if err != nil {
		return 0, nil, err
	}
	size, err := int64Param("size", r.URL.Query().Get("size"))
	if err != nil {
		return 0, nil, err
	}
	p, err := s.Proofs.InclusionProof(r.Context(), index, size)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"index": index, "size": size, "proof": hashes(p)}, nil
}

func (s *Server) consistency(r *http.Request) (int, any, error) {
	from, err := int64Param("from", r.URL.Query().Get("from"))
	if err != nil {
		return 0, nil, err
	}
	to, err := int64Param("to", r.URL.Query().Get("to"))
	if err != nil {
		return 0, nil, err
	}
	p, err := s.Proofs.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"from": from, "to": to, "proof": hashes(p)}, nil
}

func (s *Server) certificate(r *http.Request) (int, any, error) {
	id, err := int64Param("id", r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	// Who asks, before anything is looked up: a caller without a key, or
	// with a key that reads no compliance records, learns nothing, not even
	// which obligation IDs exist (a miner's is checked against the
	// obligation's below).
	if _, err := minerScope(r, ""); err != nil {
		return 0, nil, err
	}
	d, err := s.Registry.Obligation(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	if _, err := minerScope(r, d.Miner); err != nil {
		return 0, nil, err
	}
	cert, err := s.Proofs.Certificate(r.Context(), id, s.LogSigner)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cert, nil
}

func int64Param(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, apperr.New(apperr.InvalidParameter, "%s %q must be a non-negative integer", name, v)
	}
	return n, nil
}

func hashes[T ~[]tlog.Hash](p T) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}
