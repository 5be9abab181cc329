package handshake_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func metrics(t *testing.T, s *caddyproc.Server) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", s.Admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The admin endpoint's /metrics counts sessions, open sockets, agent
// writes and refusals, labelled with the site's zone.
func TestMetrics(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "zone shop"))
	se := create(t, s, form)
	ws := dial(t, s, se)
	frame(t, ws)
	ws2 := dial(t, s, se) // the same page in a second tab
	frame(t, ws2)
	agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"x"},{"type":"set","key":"email","value":"y"}],"stream":false}`)
	call(t, s, "GET", "/handshake/context/"+se.ID, "", "X-Handshake-Token", "wrong")
	m := metrics(t, s)
	for _, want := range []string{
		`caddy_ahp_handshake_sessions_created_total{site="shop"} 1`,
		`caddy_ahp_handshake_sockets_open{site="shop"} 2`,
		`caddy_ahp_handshake_sessions_connected{site="shop"} 1`,
		`caddy_ahp_handshake_actions_total{result="applied",site="shop"} 1`,
		`caddy_ahp_handshake_actions_total{result="rejected",site="shop"} 1`,
		`caddy_ahp_handshake_refused_total{endpoint="context",site="shop",status="403"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_ = ws.CloseNow()
	_ = ws2.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for m := metrics(t, s); !strings.Contains(m, `caddy_ahp_handshake_sockets_open{site="shop"} 0`) ||
		!strings.Contains(m, `caddy_ahp_handshake_sessions_connected{site="shop"} 0`); m = metrics(t, s) {
		if time.Now().After(deadline) {
			t.Fatal("open sockets and connected sessions not counted down")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
