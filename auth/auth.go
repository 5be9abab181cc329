// Package auth is AHP authentication at the edge (spec §8.2, §5.3):
// extracting credentials from a request in the manifest's scheme and
// verifying them against the operator's keys.
package auth

import (
	"io"
	"net/http"
)

// Extract returns the credential carried by h in scheme ("bearer":
// Authorization: Bearer <token>; "api_key": X-AHP-Key). present is false
// when there is none, it is empty, or it is ambiguous (several headers).
func Extract(h http.Header, scheme string) (credential string, present bool) {
	panic("not implemented yet")
}

// Keys is a set of accepted credentials. Only SHA-256 hashes are kept.
type Keys struct{}

// ParseKeys reads a keys file.
func ParseKeys(r io.Reader) (*Keys, error) { panic("not implemented yet") }

// NewKeys builds Keys from configured values.
func NewKeys(raw ...string) (*Keys, error) { panic("not implemented yet") }

// Verify reports whether credential is one of the keys, and its id.
func (k *Keys) Verify(credential string) (keyID string, ok bool) { panic("not implemented yet") }

// Len is the number of keys.
func (k *Keys) Len() int { return 0 }
