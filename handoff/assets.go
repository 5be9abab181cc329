package handoff

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
)

// solverJS is the browser's solver: a Web Worker hashing with WebCrypto,
// and a page helper that wires claim forms (assets/solver.js).
//
//go:embed assets/solver.js
var solverJS []byte

var solverETag = func() string {
	sum := sha256.Sum256(solverJS)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// SolverJS is the embedded solver's source.
func SolverJS() []byte { return solverJS }

// serveSolver serves the solver. It is served from the site's own origin
// because a Worker's script must be same-origin with its page.
func serveSolver(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd["Allow"] = []string{"GET, HEAD"}
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET.", 0)
		return nil
	}
	hd["Cache-Control"] = []string{"public, max-age=3600"}
	hd["Etag"] = []string{solverETag}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, solverETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hd["Content-Type"] = []string{"text/javascript; charset=utf-8"}
	hd["Content-Length"] = []string{strconv.Itoa(len(solverJS))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(solverJS)
	}
	return nil
}
