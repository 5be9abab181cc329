package conformance

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Everything the checker parses comes from the site it checks: untrusted.

func FuzzLinkHeader(f *testing.F) {
	for _, s := range []string{
		`</.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"`,
		`<a>; rel=x, <b>; title="q\"uo,te"; rel="y z"`, `<`, `<a`, `;;,,<>;=`, `"<a>"; rel=x`,
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://example.com/")
	manifest, _ := url.Parse("https://example.com/.well-known/agent.json")
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range parseLinkValue(s) {
			if len(l.Target) > len(s) {
				t.Fatalf("target longer than the header")
			}
			_ = l.rels()
		}
		manifestLink(http.Header{"Link": {s}}, base, manifest)
	})
}

func FuzzNotice(f *testing.F) {
	for _, s := range []string{
		`<html><body><section class="ahp-notice" style="display:none">x</section></body></html>`,
		`<template><div class=ahp-notice>`, `<div hidden><div class="ahp-notice"`, `</body><body></body>`,
		`<script><section class="ahp-notice"></script>`, `<div style="display:none;;:;">`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		s := scanNotice(page)
		if s.OutsideBody > s.Count || s.Count < 0 {
			t.Fatalf("inconsistent scan %+v", s)
		}
	})
}

func FuzzRateHeaders(f *testing.F) {
	f.Add("30", "12", "1800000040", "60")
	f.Add("", "-1", "x", "0")
	f.Add("9223372036854775807", "9223372036854775807", "9223372036854775807", "9223372036854775807")
	date := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, limit, remaining, reset, window string) {
		h := http.Header{}
		for i, v := range []string{limit, remaining, reset, window} {
			if v != "" {
				h.Set(rateHeaderNames[i], v)
			}
		}
		r := parseRateHeaders(h, date)
		if r.complete() && (r.remaining > r.limit || r.window == 0) {
			t.Fatalf("incoherent headers judged complete: %+v", r)
		}
	})
}

func FuzzRPCResponse(f *testing.F) {
	f.Add("text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
	f.Add("application/json", `[{"id":1},{"id":"1"},1]`)
	f.Add("text/event-stream", "data:\ndata:\n\n\n")
	f.Fuzz(func(t *testing.T, mt, body string) {
		m, err := findRPCResponse(mt, []byte(body), 1)
		if err == nil && m["id"] != float64(1) {
			t.Fatalf("wrong message %v", m)
		}
	})
}

func FuzzSiteManifest(f *testing.F) {
	f.Add(`{"ahp":"0.1","modes":["MODE2"],"capabilities":[{"name":"a","mode":"MODE3","action_type":"async"}],"integrations":{"mcp":{"url":1}},"rate_limits":{"unauthenticated":[]}}`)
	f.Add(`{"capabilities":[null,1,"x",{}],"endpoints":[],"async":{"supported":"yes"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := parseSiteManifest([]byte(body))
		if err != nil {
			return
		}
		for _, p := range m.rules() {
			if !utf8.ValidString(p) && utf8.ValidString(body) {
				t.Fatalf("invalid UTF-8 in %q", p)
			}
		}
		m.conversePath()
		m.looksLikeA2A()
		checkResponse([]byte(body))
	})
}

// FuzzEventsUntil: reading an SSE stream up to the response returns a
// prefix of the stream, and a stream cut short holds the response.
func FuzzEventsUntil(f *testing.F) {
	f.Add("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\nevent: message\ndata: more\n\n")
	f.Add("data: {\"id\":2}\n\ndata: [{\"id\":1}]\r\n\r\n: comment\n")
	f.Add("data:\ndata: {\"id\":1}\n")
	f.Fuzz(func(t *testing.T, stream string) {
		got, err := readEventsUntil(strings.NewReader(stream), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stream, string(got)) {
			t.Fatalf("%q is not a prefix of the stream", got)
		}
		if len(got) < len(stream) {
			if _, err := findRPCResponse("text/event-stream", got, 1); err != nil {
				t.Fatalf("stopped at %d of %d bytes without the response: %v", len(got), len(stream), err)
			}
		}
	})
}

// FuzzSiteURL: whatever the site argument, the run gets a root URL on a
// host, or a usage error; never a panic, and a default port is gone.
func FuzzSiteURL(f *testing.F) {
	for _, s := range []string{"example.com", "https://example.com:443/blog?x=1", "http://[::1]:80/", "http://EXAMPLE.com:8080", "https://a:b@c", "ftp://x", "http://", "https://[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o := Options{URL: s}
		site, _, err := o.complete()
		if err != nil {
			return
		}
		if site.Path != "/" || site.Host == "" || site.User != nil {
			t.Fatalf("%q: site %q", s, site)
		}
		if p := site.Port(); p != "" && p == portOf(&url.URL{Scheme: site.Scheme}) {
			t.Fatalf("%q: default port kept in %q", s, site)
		}
		if !sameHost(site, site) || siteHost(site) != site.Host {
			t.Fatalf("%q: site %q is not its own host", s, site)
		}
	})
}
