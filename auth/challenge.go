package auth

import "github.com/caddy-ahp/caddy-ahp/manifest"

// Challenge is the WWW-Authenticate value of a 401 for scheme (RFC 9110
// §11.6.1 requires one): Bearer (RFC 6750), or for X-AHP-Key a scheme
// named after the header, so a client learns where the key goes.
func Challenge(scheme string) string {
	if scheme == manifest.AuthAPIKey {
		return `AHP-Key realm="ahp", header="X-AHP-Key"`
	}
	return `Bearer realm="ahp"`
}
