package manifest

import "strings"

// CoreResponseTypes is AHP 0.1's core content type registry (Appendix
// C.2). The schema's pattern admits any text/, application/, media/ or
// file/ type; only these are defined, and anything else a site invents
// must be an x- extension type (Appendix C.3).
var CoreResponseTypes = []string{
	"text/answer",
	"application/data",
	"application/feed",
	"media/video",
	"media/audio",
	"media/image",
	"file/download",
	"application/action-result",
}

// RegisteredResponseType reports whether t is a core registry type or an
// x- extension type ("x-vendor/type"), the two kinds the spec defines.
func RegisteredResponseType(t string) bool {
	if strings.HasPrefix(t, "x-") {
		return true
	}
	for _, c := range CoreResponseTypes {
		if t == c {
			return true
		}
	}
	return false
}
