package handoff

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// discoveryDoc is spec §6.1's document, field for field.
type discoveryDoc struct {
	AHPVersion string `json:"ahp_version"`
	Provider   struct {
		Name string `json:"name"`
		Docs string `json:"docs,omitempty"`
	} `json:"provider"`
	Sandbox struct {
		Enabled           bool     `json:"enabled"`
		Admission         []string `json:"admission"`
		ChallengeEndpoint string   `json:"challenge_endpoint,omitempty"`
		CreateEndpoint    string   `json:"create_endpoint,omitempty"`
		TTLHours          int      `json:"ttl_hours"`
	} `json:"sandbox"`
	Security struct {
		HandleRotationOnClaim   bool `json:"handle_rotation_on_claim"`
		HandleRotationOnPublish bool `json:"handle_rotation_on_publish"`
		AdaptivePoW             bool `json:"adaptive_pow"`
	} `json:"security"`
	ContentTypes []string `json:"content_types,omitempty"`
	// Claim is there only when the edge verifies claims: §6.1 defines
	// one method, code_plus_pow, and the edge vouches only for what it
	// enforces.
	Claim *discoveryClaim `json:"claim,omitempty"`
}

// discoveryClaim adds to §6.1's method where claims are verified and
// their challenges fetched, absolute as the sandbox's endpoints are: the
// spec defines no claim-verification endpoint, and an agent or the
// human's client would otherwise learn them only from these docs. Extra
// members, as the challenge answer's input and nonce_format are.
type discoveryClaim struct {
	Method            string `json:"method"`
	VerifyEndpoint    string `json:"verify_endpoint,omitempty"`
	ChallengeEndpoint string `json:"challenge_endpoint,omitempty"`
}

// discovery serves /.well-known/agent-access. Endpoints are absolute
// (spec §6.1): from the configured base URL, else from each request's
// scheme and host; the rendering of a few hosts is kept.
type discovery struct {
	doc      discoveryDoc
	base     string
	trusted  func(*http.Request) bool // Config.TrustedProxy
	paths    [2]string                // challenge, create
	claim    [2]string                // verify, claim challenge: literal paths only
	mu       sync.RWMutex
	rendered map[string]*renderedDoc
}

type renderedDoc struct {
	body []byte
	etag string
}

const maxRenderedHosts = 16

func newDiscovery(p Provider, h *Handler) (*discovery, error) {
	if p.Name == "" {
		return nil, errors.New("provider: a name is required (provider \"Example\" https://docs.example.com)")
	}
	d := &discovery{base: strings.TrimSuffix(p.BaseURL, "/"), trusted: h.trustedProxy, rendered: map[string]*renderedDoc{}}
	if d.base != "" && !strings.HasPrefix(d.base, "https://") && !strings.HasPrefix(d.base, "http://") {
		return nil, errors.New("base_url: want an absolute http(s) URL such as https://api.example.com")
	}
	doc := &d.doc
	doc.AHPVersion = "1.0"
	doc.Provider.Name, doc.Provider.Docs = p.Name, p.Docs
	d.paths = [2]string{h.paths.Challenge, h.paths.Create}
	doc.Sandbox.Enabled = d.paths[0] != "" && d.paths[1] != ""
	doc.Sandbox.Admission = []string{"proof_of_work"}
	ttl := p.SandboxTTL
	if ttl <= 0 {
		ttl = DefaultSandboxTTL
	}
	doc.Sandbox.TTLHours = int((ttl + 59*60e9) / 3600e9) // whole hours, rounded up
	// True only for what is enforced: adaptive difficulty here; handle
	// rotation is the backend's, and only the operator can declare it.
	doc.Security.AdaptivePoW = h.difficulty.Ceiling > h.difficulty.Base && (h.difficulty.GlobalStep > 0 || h.difficulty.NetworkStep > 0)
	doc.Security.HandleRotationOnClaim = p.HandleRotation
	doc.Security.HandleRotationOnPublish = p.HandleRotation
	doc.ContentTypes = p.ContentTypes
	if h.paths.Verify != "" {
		doc.Claim = &discoveryClaim{Method: "code_plus_pow"}
		for i, p := range []string{h.paths.Verify, h.paths.ClaimChallenge} {
			if !strings.Contains(p, "*") {
				d.claim[i] = p
			}
		}
	}
	if strings.ContainsAny(d.paths[0]+d.paths[1], "*") {
		return nil, errors.New("challenge and create paths must be literal (no *): discovery publishes them")
	}
	return d, nil
}

func (d *discovery) render(origin string) (*renderedDoc, error) {
	d.mu.RLock()
	rd := d.rendered[origin]
	d.mu.RUnlock()
	if rd != nil {
		return rd, nil
	}
	doc := d.doc
	if d.paths[0] != "" {
		doc.Sandbox.ChallengeEndpoint = origin + d.paths[0]
	}
	if d.paths[1] != "" {
		doc.Sandbox.CreateEndpoint = origin + d.paths[1]
	}
	if doc.Claim != nil {
		c := *doc.Claim
		if d.claim[0] != "" {
			c.VerifyEndpoint = origin + d.claim[0]
		}
		if d.claim[1] != "" {
			c.ChallengeEndpoint = origin + d.claim[1]
		}
		doc.Claim = &c
	}
	body, err := json.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	rd = &renderedDoc{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	d.mu.Lock()
	if len(d.rendered) < maxRenderedHosts {
		d.rendered[origin] = rd
	}
	d.mu.Unlock()
	return rd, nil
}

// origin is the scheme and host endpoints are made absolute with: the
// configured base URL, else the request's host and scheme, which a
// trusted proxy's X-Forwarded-Host and X-Forwarded-Proto set (trusted
// reports that they did; from anyone else they are ignored, or any
// client could make the site advertise its endpoints elsewhere).
func (d *discovery) origin(r *http.Request) (origin string, trusted bool) {
	if d.base != "" {
		return d.base, false
	}
	trusted = d.trusted != nil && d.trusted(r)
	if o := httpx.PublicOrigin(r, trusted); o != "" {
		return o, trusted
	}
	r2 := *r // no usable host: the scheme still holds
	r2.Host = "localhost"
	return httpx.PublicOrigin(&r2, trusted), trusted
}

func (d *discovery) serve(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd["Allow"] = []string{"GET, HEAD"}
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET.", 0)
		return nil
	}
	origin, trusted := d.origin(r)
	rd, err := d.render(origin)
	if err != nil {
		return err
	}
	if trusted {
		// A shared cache must not hand the https document to an http
		// client, nor one host's document to another's.
		// A fresh slice: one set by a handler before may be shared.
		v := hd["Vary"]
		hd["Vary"] = append(v[:len(v):len(v)], "X-Forwarded-Proto", "X-Forwarded-Host")
	}
	hd["Cache-Control"] = []string{"public, max-age=300"}
	hd["Etag"] = []string{rd.etag}
	hd["Access-Control-Allow-Origin"] = []string{"*"}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, rd.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hd["Content-Type"] = []string{"application/json"}
	hd["Content-Length"] = []string{strconv.Itoa(len(rd.body))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(rd.body)
	}
	return nil
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.TrimPrefix(v, "W/") == etag {
			return true
		}
	}
	return false
}
