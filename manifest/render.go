package manifest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// Document is the manifest rendered once at load: the exact bytes served
// and their strong validator.
type Document struct {
	JSON []byte
	// ETag is a strong entity tag (quoted) derived from JSON.
	ETag string
}

// Render marshals the manifest for serving.
func Render(m *Manifest) (*Document, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	return &Document{
		JSON: b,
		ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
	}, nil
}
