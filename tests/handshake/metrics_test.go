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
	agent(t, s, "POST", "/handshake/action/SID", se, `{"actions":[{"type":"set","key":"name","value":"x"},{"type":"set","key":"email","value":"y"}],"stream":false}`)
	call(t, s, "GET", "/handshake/context/"+se.ID, "", "X-Handshake-Token", "wrong")
	m := metrics(t, s)
	for _, want := range []string{
		`caddy_ahp_handshake_sessions_created_total{site="shop"} 1`,
		`caddy_ahp_handshake_sockets_open{site="shop"} 1`,
		`caddy_ahp_handshake_actions_total{result="applied",site="shop"} 1`,
		`caddy_ahp_handshake_actions_total{result="rejected",site="shop"} 1`,
		`caddy_ahp_handshake_refused_total{endpoint="context",site="shop",status="403"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_ = ws.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metrics(t, s), `caddy_ahp_handshake_sockets_open{site="shop"} 0`) {
		if time.Now().After(deadline) {
			t.Fatal("open sockets not counted down")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
