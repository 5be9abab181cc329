package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

func modeGateway(t *testing.T, mode ratelimit.Headers, dry bool, unauth, perAgent limiter.Limit) *Gateway {
	t.Helper()
	yes := true
	m, _, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name: "Test", Endpoints: &manifest.Endpoints{Converse: "/agent/converse"}, Authentication: manifest.AuthBearer, ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Capabilities: []manifest.Capability{{Name: "site_info", Mode: "MODE2", Description: "General information"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	store := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	huge := limiter.Limit{Events: 1 << 40, Window: time.Minute}
	lim := ratelimit.New(ratelimit.Config{Store: store, Zone: "modes", Unauthenticated: unauth, Authenticated: huge, Static: huge,
		PerAgent: perAgent, Headers: mode, DryRun: dry, ClientKey: func(*http.Request) string { return "192.0.2.9" }})
	g, err := New(Config{Manifest: m, Rules: converse.NewRules(m, converse.Options{}), CORS: true, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Every answer kind, through every header mode, dry run or not, with the
// client's tier on or off and a per-agent window: the mode's fields carry
// exactly one value each, the gateway's, never the concierge's; Date and
// Content-Length at most one value.
func TestOwnFieldsMatrix(t *testing.T) {
	concierge := func(status int, ctype, body string) nextFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			h := w.Header()
			for _, k := range ratelimit.FieldNames {
				h.Add(k, "concierge")
			}
			h.Add("Access-Control-Allow-Origin", "https://concierge.example")
			h.Add("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
			h.Add("Content-Length", "999999")
			h.Set("Content-Type", ctype)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return nil
		}
	}
	kinds := map[string]nextFunc{
		"json":      concierge(200, "application/json", `{"status":"success","response":{"answer":"x"},"meta":{"tokens_used":1}}`),
		"big json":  concierge(200, "application/json", `{"status":"success","response":{"answer":"`+strings.Repeat("x", 3000)+`"}}`),
		"bad json":  concierge(200, "application/json", `{"status"`),
		"json 400":  concierge(400, "application/json", `{"status":"error"}`),
		"html":      concierge(200, "text/html", `<p>hi</p>`),
		"503":       concierge(503, "text/plain", `busy`),
		"sse":       concierge(200, "text/event-stream", "data: x\n\n"),
		"no answer": func(w http.ResponseWriter, r *http.Request) error { return nil },
		"error":     func(w http.ResponseWriter, r *http.Request) error { return http.ErrHandlerTimeout },
	}
	minute := func(n int64) limiter.Limit { return limiter.Limit{Events: n, Window: time.Minute} }
	for _, mode := range []ratelimit.Headers{ratelimit.HeadersAHP, ratelimit.HeadersIETF, ratelimit.HeadersBoth} {
		var want []string
		switch mode {
		case ratelimit.HeadersAHP:
			want = ratelimit.FieldNames[:4]
		case ratelimit.HeadersIETF:
			want = ratelimit.FieldNames[4:]
		default:
			want = ratelimit.FieldNames[:]
		}
		for _, dry := range []bool{false, true} {
			for _, tier := range []limiter.Limit{minute(2), {}} {
				for kind, next := range kinds {
					g := modeGateway(t, mode, dry, tier, minute(2))
					for call := 0; call < 4; call++ { // past both limits
						for _, route := range []Route{ConverseRoute, StatusRoute} {
							for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodHead} {
								if (route == ConverseRoute) != (method == http.MethodPost) {
									continue
								}
								var r *http.Request
								if route == ConverseRoute {
									r = httptest.NewRequest(method, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi","context":{"requesting_agent":"bot"}}`))
								} else {
									r = httptest.NewRequest(method, "/agent/converse/status/job", nil)
									r.Header.Set("Authorization", "Bearer "+testKey) // a poll needs a credential (CheckPoll)
								}
								r.Header.Set("Content-Type", "application/json")
								r.Header.Set("Origin", "https://agent.example")
								w := &finalWriter{h: http.Header{}}
								_ = g.ServeHTTP(w, r, route, next)
								h := w.sent
								name := func() string {
									return kind + " " + method + " mode " + string(rune('0'+mode)) + map[bool]string{true: " dry", false: ""}[dry] +
										map[bool]string{true: " tier off", false: ""}[tier.Events == 0] + " call " + string(rune('0'+call))
								}
								if h == nil {
									continue // nothing sent (client gone)
								}
								if route == StatusRoute && tier.Events == 0 {
									continue // no decision on this poll: the concierge's fields pass, as before today's diff
								}
								anyField := false
								for _, k := range want {
									if len(h[k]) > 0 {
										anyField = true
									}
								}
								for _, k := range want {
									v := h[k]
									if anyField && (len(v) != 1 || v[0] == "concierge") {
										t.Errorf("%s: %s = %q (status %d)", name(), k, v, w.code)
									}
									if !anyField && len(v) > 0 {
										t.Errorf("%s: %s = %q", name(), k, v)
									}
								}
								if (tier.Events != 0 || route == ConverseRoute) && !anyField && !(route == StatusRoute && tier.Events == 0) {
									t.Errorf("%s: no rate-limit fields at all (status %d): %v", name(), w.code, h)
								}
								if v := h["Access-Control-Allow-Origin"]; len(v) != 1 || v[0] != "*" {
									t.Errorf("%s: Access-Control-Allow-Origin %q", name(), v)
								}
								if len(h["Date"]) > 1 || len(h["Content-Length"]) > 1 {
									t.Errorf("%s: Date %q Content-Length %q", name(), h["Date"], h["Content-Length"])
								}
							}
						}
					}
				}
			}
		}
	}
}
