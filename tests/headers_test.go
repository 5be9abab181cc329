package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Caddy's header handler edits values in place, and a deferred edit
// (">Link") runs after the handlers below it set their headers. If a
// header value the plugin sets were shared between responses (a
// package-level slice, a configured one), one site's edit would show on
// every later response of every site, and race. Run under -race.
func TestHeaderValuesAreEachResponsesOwn(t *testing.T) {
	up := legacyUpstream(t)
	s := startCaddy(t, fmt.Sprintf(`
http://127.0.0.1:{{PORT}} {
%[1]s
	header >Link "agent\.json" "other.json"
	header >Vary "Accept" "Edited"
	header >X-RateLimit-Limit "[0-9]+" "edited"
	reverse_proxy %[2]s
}
http://localhost:{{PORT}} {
%[1]s
	reverse_proxy %[2]s
}`, ahpBlock("converse /agent/converse\n\t\tcapability site_info {\n\t\t\tmode MODE2\n\t\t\tdescription \"About\"\n\t\t}"), up.Listener.Addr()))

	edited := s.get("/")
	if !strings.Contains(edited.Header.Get("Link"), "other.json") {
		t.Fatalf("the first site's header directive did not edit Link: %q", edited.Header.Values("Link"))
	}
	host := fmt.Sprintf("localhost:%d", s.port)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				s.get("/")                                           // the editing site
				s.get("/.well-known/agent.json")                     // its manifest
				s.converse(`{"capability":"site_info","query":"x"}`) // its rate-limit headers
				for _, r := range []response{
					s.get("/", "Host", host),
					s.get("/.well-known/agent.json", "Host", host),
					s.do("POST", "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"x"}`), "Host", host, "Content-Type", "application/json"),
				} {
					if links := strings.Join(r.Header.Values("Link"), ","); strings.Contains(links, "other.json") || !strings.Contains(links, "agent.json") {
						errs <- "Link " + links
					}
					if v := strings.Join(r.Header.Values("Vary"), ","); strings.Contains(v, "Edited") {
						errs <- "Vary " + v
					}
					if l := r.Header.Get("X-RateLimit-Limit"); l == "edited" {
						errs <- "X-RateLimit-Limit " + l
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("the second site's response carries the first site's edit: %s", e)
	}
}
