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

// FuzzCheck: with keys configured, whatever credential headers and body
// auth a request carries, a request Check lets through reaches the
// concierge (after Forward) with no credential header but the verified
// key in the scheme's header; a refusal is 401 or 403. Without keys, Check
// never refuses a request that carries a readable credential.
func FuzzCheck(f *testing.F) {
	good := "Zq3xV9tL0pR7mK2wY8bN4cH6"
	f.Add(true, "Bearer "+good, "", "", "", "", true)
	f.Add(true, "Bearer "+good, "Bearer "+good, "", "", "", false)
	f.Add(true, "Basic x", "", "", "", "", false)
	f.Add(false, "", "", good, "", "", true)
	f.Add(false, "Bearer "+good, "", good, good, "", true)
	f.Add(true, "", "", good, "", "Bearer "+good, true)
	keys, err := NewKeys(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, bearer bool, auth1, auth2, key1, key2, bodyAuth string, required bool) {
		scheme := manifest.AuthAPIKey
		if bearer {
			scheme = manifest.AuthBearer
		}
		h := http.Header{}
		for _, v := range []string{auth1, auth2} {
			if v != "" {
				h.Add(HeaderAuthorization, v)
			}
		}
		for _, v := range []string{key1, key2} {
			if v != "" {
				h.Add(HeaderAPIKey, v)
			}
		}
		if auth1 == "-" { // an empty header value
			h[HeaderAuthorization] = []string{""}
		}
		p := Policy{Scheme: scheme, Keys: keys}
		res, e := p.Check(h.Clone(), bodyAuth, required)
		if e != nil {
			if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
				t.Fatalf("status %d", e.Status)
			}
			if strings.Contains(e.Message, good) {
				t.Fatal("the message echoes the key")
			}
		} else {
			fwd := h.Clone()
			p.Forward(fwd, res)
			own, other := HeaderAuthorization, HeaderAPIKey
			if !bearer {
				own, other = other, own
			}
			if _, ok := fwd[other]; ok {
				t.Fatalf("the other scheme's header reaches the concierge: %q", fwd)
			}
			switch v, ok := fwd[own]; {
			case !res.Verified && ok:
				t.Fatalf("an unverified credential reaches the concierge: %q (result %+v)", v, res)
			case res.Verified && (len(v) != 1 || res.Credential != good):
				t.Fatalf("verified %q, forwarded %q", res.Credential, v)
			case res.Verified:
				if cred, ok := Extract(fwd, scheme); !ok || cred != good {
					t.Fatalf("the forwarded header does not read back: %q", v)
				}
			}
		}
		p.Keys = nil
		if cred, present := Extract(h, scheme); present {
			res, e := p.Check(h, bodyAuth, required)
			if e != nil || res.Credential != cred || res.Verified {
				t.Fatalf("without keys: %+v %v", res, e)
			}
		}
	})
}
