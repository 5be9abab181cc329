package htmlinject

import (
	"net/http"
	"strings"
)

// SkipRequest is asked before the response exists. It returns why the
// response to r must pass untouched, or "" when it may get the snippet:
// HEAD, CONNECT and upgrades; requests for a part of a page (Sec-Fetch-Dest
// present and not document, iframe, frame, embed or object; HX-Request:
// true); Cache-Control: no-transform.
func SkipRequest(r *http.Request) string {
	switch r.Method {
	case http.MethodHead:
		return ReasonHEAD
	case http.MethodConnect: // also HTTP/2 and HTTP/3 WebSockets (RFC 8441)
		return "CONNECT request"
	}
	return skipRequestHeaders(r.Header)
}

// ReasonHEAD is why a HEAD answer has no body to change. Its header is
// still made GET's (see Writer).
const ReasonHEAD = "HEAD request"

// skipRequestHeaders is SkipRequest's judgement of r's header fields,
// which a HEAD shares with the GET it stands for.
func skipRequestHeaders(h http.Header) string {
	// The header maps are read directly, as net/http itself does: keys
	// are canonical, and Get would canonicalize them again on every
	// request (a measured share of what a stylesheet costs the plugin).
	if first(h["Upgrade"]) != "" || hasToken(h["Connection"], "upgrade") {
		return "protocol upgrade request"
	}
	// A fetch() or htmx request asks for a part of a page to swap into the
	// one on screen, which has its notice: one more per swap would pile up,
	// and a <tr> fragment would no longer parse as a table row.
	if dest := h["Sec-Fetch-Dest"]; len(dest) > 0 && !documentDest(dest[0]) {
		return ReasonFragmentRequest
	}
	if hx := h["Hx-Request"]; len(hx) > 0 && strings.EqualFold(hx[0], "true") {
		return ReasonFragmentRequest
	}
	// RFC 9111 §5.2.1.6: the client asks intermediaries not to transform the content.
	if hasToken(h["Cache-Control"], "no-transform") {
		return "request Cache-Control: no-transform"
	}
	return ""
}

// ReasonFragmentRequest is why a response to a request for a part of a
// page (Sec-Fetch-Dest other than a document's, or HX-Request: true) keeps
// its body.
const ReasonFragmentRequest = "fragment request"

// documentDest reports whether a Sec-Fetch-Dest value asks for a whole
// document: a top-level page or one nested in a frame, an embed or an
// object.
func documentDest(d string) bool {
	switch d {
	case "document", "iframe", "frame", "embed", "object":
		return true
	}
	return false
}

// SkipResponse is asked once, at WriteHeader time. It returns why a response
// with this status and header must pass untouched, or "" when it gets the
// snippet. Only text/html and application/xhtml+xml qualify; success and
// error statuses alike do.
func SkipResponse(status int, h http.Header) string {
	switch {
	case status < 200:
		return "informational status"
	case status == http.StatusNoContent, status == http.StatusResetContent, status == http.StatusNotModified:
		return "status without a body"
	case status == http.StatusPartialContent:
		return "partial content"
	}
	// The type first: most responses are not pages, and one lookup says so.
	switch mediaType(first(h["Content-Type"])) {
	case "":
		return "no Content-Type"
	case "text/html", "application/xhtml+xml":
	case "text/event-stream":
		return "event stream"
	default:
		return ReasonNotHTML
	}
	if len(h["Content-Range"]) > 0 {
		return "Content-Range response"
	}
	if hasToken(h["Cache-Control"], "no-transform") {
		return "Cache-Control: no-transform"
	}
	// The snippet is ASCII: spliced into UTF-16 it reads as garbage and
	// leaves an odd byte count. (A body without a charset label is checked
	// for a UTF-16 or UTF-32 start as it streams.)
	if !asciiCompatible(charset(first(h["Content-Type"]))) {
		return ReasonCharset
	}
	// A digest sent after the body (RFC 9530; reverse_proxy copies
	// trailers) would vouch for the original bytes, not ours: nothing is
	// lost by leaving such a page alone, and a trailer cannot be taken
	// back once announced.
	if tr := h["Trailer"]; len(tr) > 0 && (hasToken(tr, "Content-Digest") || hasToken(tr, "Repr-Digest") ||
		hasToken(tr, "Digest") || hasToken(tr, "Content-MD5")) {
		return "digest trailer"
	}
	// A download is a file, not a page: change nothing the user saves.
	if cd := first(h["Content-Disposition"]); len(cd) >= len("attachment") && strings.EqualFold(cd[:len("attachment")], "attachment") {
		return "attachment download"
	}
	return ""
}

// ReasonCharset is why a page in a character encoding that is not
// ASCII-compatible (UTF-16, UTF-32, EBCDIC) keeps its body, whether its
// Content-Type says so or its first bytes do.
const ReasonCharset = "charset not ASCII-compatible"

// charset returns the value of the charset parameter of a Content-Type
// value, unquoted, or "", without allocating.
func charset(ct string) string {
	for {
		i := strings.IndexByte(ct, ';')
		if i < 0 {
			return ""
		}
		ct = ct[i+1:]
		param := strings.TrimLeft(ct, " \t")
		if len(param) > len("charset=") && strings.EqualFold(param[:len("charset=")], "charset=") {
			v := param[len("charset="):]
			if j := strings.IndexByte(v, ';'); j >= 0 {
				v = v[:j]
			}
			return strings.Trim(v, " \t\"")
		}
	}
}

// asciiCompatible reports whether a charset label names an encoding in
// which ASCII markup is itself ("" and unknown labels are taken to be).
func asciiCompatible(cs string) bool {
	if cs == "" {
		return true
	}
	for _, prefix := range [...]string{"utf-16", "utf-32", "ucs-2", "ucs-4", "utf-7", "unicode", "csunicode",
		"iso-10646-ucs", "x-utf-16", "x-utf-32", "ebcdic", "cp037", "ibm037", "cp500", "ibm500", "cp1026", "ibm1026",
		"cp1047", "ibm1047", "cp1140", "ibm01140"} {
		if len(cs) >= len(prefix) && strings.EqualFold(cs[:len(prefix)], prefix) {
			return false
		}
	}
	return true
}

// ReasonNotHTML is why nearly every answer that is not a page keeps its
// body (stylesheets, scripts, images, JSON): observers may count it on a
// fast path.
const ReasonNotHTML = "not HTML"

// first is a header field's first value, as Header.Get gives it.
func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// mediaType returns the type/subtype of a Content-Type value, in canonical
// lower case for the types SkipResponse tells apart, without allocating.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	// Media types are ASCII (RFC 9110 §8.3.1): equal lengths first, then
	// ASCII case, so "text/css" costs one comparison of lengths per type.
	for _, known := range [...]string{"text/html", "application/xhtml+xml", "text/event-stream"} {
		if len(ct) == len(known) && strings.EqualFold(ct, known) {
			return known
		}
	}
	return ct
}

// hasToken reports whether a comma-separated header field holds token
// (case-insensitive), ignoring any "=value" part.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if i := strings.IndexByte(item, '='); i >= 0 {
				item = item[:i]
			}
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}
