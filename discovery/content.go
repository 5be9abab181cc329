package discovery

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
)

// ServeContentFile serves the MODE1 content document from the local file
// (`content /llms.txt ./llms.txt`). The file is opened per request, as
// file_server does, so edits show without a reload; conditional and range
// requests work through http.ServeContent.
func (h *Handler) ServeContentFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = []string{"GET, HEAD"}
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+h.contentPath+"; use GET"))
		return
	}
	f, err := os.Open(h.contentFile)
	if err != nil {
		h.logger.Error("MODE1 content file cannot be opened", zap.String("file", h.contentFile), zap.Error(err))
		ahperror.Write(w, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
			"the content document is temporarily unavailable"))
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		h.logger.Error("MODE1 content file is not a readable file", zap.String("file", h.contentFile), zap.Error(err))
		ahperror.Write(w, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
			"the content document is temporarily unavailable"))
		return
	}
	hdr := w.Header()
	v := make([]string, 2)
	v[0], v[1] = h.contentType, "*"
	hdr["Content-Type"], hdr["Access-Control-Allow-Origin"] = v[0:1:1], v[1:2:2]
	if h.signals != nil && isPage(hdr["Content-Type"]) {
		addSignals(hdr, h.signals) // a page like any other (link.go)
	}
	http.ServeContent(w, r, info.Name(), info.ModTime(), f)
	h.obs.ContentServed()
}

// checkContentFile opens the content document once at load, so a typo or
// a relative path that resolves elsewhere under a service manager fails
// `caddy validate` instead of answering 503 to every fetch while the
// manifest advertises the document. Per request it is still opened anew.
func checkContentFile(path, file string) error {
	f, err := os.Open(file)
	if err == nil {
		var info os.FileInfo
		if info, err = f.Stat(); err == nil && info.IsDir() {
			err = fmt.Errorf("%s is a directory, not a file", file)
		}
		f.Close()
	}
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the message names the file already
	}
	hint := ""
	if !filepath.IsAbs(file) {
		wd, _ := os.Getwd()
		hint = fmt.Sprintf(" (a relative path resolves from the directory Caddy runs in, here %s: give an absolute path, or set the service's working directory)", wd)
	}
	return fmt.Errorf("ahp content %s %s: %v%s", path, file, err, hint)
}

// HasContentFile reports whether the content document is a local file.
func (h *Handler) HasContentFile() bool { return h.contentFile != "" }

// contentTypeFor names the type of a content document by its extension;
// llms.txt is Markdown by convention but served as text/plain, which every
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
