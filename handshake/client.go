package handshake

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
)

//go:embed client.js
var clientSource []byte

// clientScript is client.js with this handler's prefixes, and its ETag.
func clientScript(prefix, wsPrefix string) ([]byte, string) {
	cfg, _ := json.Marshal(map[string]string{"prefix": prefix, "wsPrefix": wsPrefix})
	const marker = "/*HPP-CONFIG*/"
	i := bytes.Index(clientSource, []byte(marker))
	j := i + len(marker) + bytes.IndexByte(clientSource[i+len(marker):], ';')
	js := make([]byte, 0, len(clientSource)+len(cfg))
	js = append(js, clientSource[:i]...)
	js = append(js, cfg...)
	js = append(js, clientSource[j:]...)
	sum := sha256.Sum256(js)
	return js, `"` + hex.EncodeToString(sum[:12]) + `"`
}

// ScriptTag is the snippet `inject forms` adds to pages.
func ScriptTag(prefix string) []byte {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	// XML-balanced, so application/xhtml+xml pages still parse.
	return []byte(`<script src="` + prefix + `/client.js" defer="defer" data-hpp-client="1"></script>`)
}

func (h *Handler) serveClientJS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = []string{"GET, HEAD"}
		writeError(w, http.StatusMethodNotAllowed, "method not allowed; use GET")
		return
	}
	hd := w.Header()
	hd["Content-Type"] = []string{"text/javascript; charset=utf-8"}
	hd["Cache-Control"] = []string{"public, max-age=300"}
	hd["Etag"] = []string{h.jsETag}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	if match := r.Header.Get("If-None-Match"); match != "" && match == h.jsETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd["Content-Length"] = []string{strconv.Itoa(len(h.clientJS))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(h.clientJS)
	}
}
