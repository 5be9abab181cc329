package middleware

import (
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
)

// serveContentFile serves the MODE1 content document from a local file
// (`content /llms.txt ./llms.txt`). The file is opened per request, as
// file_server does, so edits show up without a reload; conditional and
// range requests work through http.ServeContent.
func (h *Handler) serveContentFile(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowContent
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+h.contentPath+"; use GET"))
		return nil
	}
	f, err := os.Open(h.contentFile)
	if err != nil {
		h.logger.Error("MODE1 content file cannot be opened", zap.String("file", h.contentFile), zap.Error(err))
		ahperror.Write(w, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
			"the content document is temporarily unavailable"))
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		h.logger.Error("MODE1 content file is not a readable file", zap.String("file", h.contentFile), zap.Error(err))
		ahperror.Write(w, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
			"the content document is temporarily unavailable"))
		return nil
	}
	hdr := w.Header()
	hdr["Content-Type"] = h.contentType
	hdr["Access-Control-Allow-Origin"] = h.manifestHeader["Access-Control-Allow-Origin"]
	http.ServeContent(w, r, info.Name(), info.ModTime(), f)
	h.observer.ContentServed()
	return nil
}

var allowContent = []string{"GET, HEAD"}

// contentTypeFor names the type of a content document by its extension;
// llms.txt is markdown by convention but served as text/plain, which every
// agent reads.
func contentTypeFor(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".txt", "":
		return "text/plain; charset=utf-8"
	case ".md", ".markdown":
		return "text/markdown; charset=utf-8"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(filepath.Ext(file)); t != "" {
		return t
	}
	return "text/plain; charset=utf-8"
}
