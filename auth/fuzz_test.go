package auth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// FuzzExtract checks that a credential Extract returns is never empty and
// never holds spaces or control characters, that it is the value's
// suffix (nothing invented), and that SetHeader round-trips it.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{"Bearer tok", "bearer  tok ", "Basic x", "Bearer", "Bearer \x00", "  BEARER\tabc=", "k3y"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, value string, bearer bool) {
		scheme, key := manifest.AuthAPIKey, HeaderAPIKey
		if bearer {
			scheme, key = manifest.AuthBearer, HeaderAuthorization
		}
		cred, present := Extract(http.Header{key: {value}}, scheme)
		if !present {
			if cred != "" {
				t.Fatalf("not present but credential %q", cred)
			}
			return
		}
		if !isToken(cred) || !strings.Contains(value, cred) {
			t.Fatalf("Extract(%q) = %q", value, cred)
		}
		h := http.Header{}
		SetHeader(h, scheme, cred)
		if again, ok := Extract(h, scheme); !ok || again != cred {
			t.Fatalf("SetHeader/Extract round trip: %q -> %q %v", cred, again, ok)
		}
	})
}
