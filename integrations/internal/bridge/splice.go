package bridge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
)

// Spliced is a document rendered once at load with the site's base URL
// left open (servers[0].url, resource URIs): per request, only the base
// URL is written between the rendered parts, nothing is marshalled again.
type Spliced struct {
	parts [][]byte
	fixed int // total length of the parts
}

// Placeholder returns a token to render where the base URL goes. It is
// random, so no manifest text can contain it by accident, and plain hex, so
// JSON encoding leaves it as it is.
func Placeholder() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ahpbase" + hex.EncodeToString(b[:])
}

// Splice cuts doc at every occurrence of placeholder. With none, or an
// empty placeholder, the document is the same for every base URL.
func Splice(doc []byte, placeholder string) *Spliced {
	parts := [][]byte{doc}
	if placeholder != "" {
		parts = bytes.Split(doc, []byte(placeholder))
	}
	s := &Spliced{parts: parts}
	for _, p := range parts {
		s.fixed += len(p)
	}
	return s
}

// Len is the length of the document with base in place.
func (s *Spliced) Len(base string) int { return s.fixed + (len(s.parts)-1)*len(base) }

// AppendTo appends the document with base in place. base must need no
// JSON escaping (BaseURL guarantees it).
func (s *Spliced) AppendTo(dst []byte, base string) []byte {
	for i, p := range s.parts {
		if i > 0 {
			dst = append(dst, base...)
		}
		dst = append(dst, p...)
	}
	return dst
}

// WriteTo writes the document with base in place to w, part by part,
// without assembling it.
func (s *Spliced) WriteTo(w io.Writer, base string) error {
	for i, p := range s.parts {
		if i > 0 {
			if _, err := io.WriteString(w, base); err != nil {
				return err
			}
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}
