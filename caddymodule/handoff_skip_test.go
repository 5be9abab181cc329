package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

// validate adapts a Caddyfile and provisions it without starting it, as
// `caddy validate` does.
func validate(t *testing.T, in string) error {
	t.Helper()
	return validateWithGlobals(t, "", in)
}

const (
	verifyingAhp = `ahp {
		name "Shop"
		content_signals {
			ai_input true
		}
		verified_agents
	}`
	plainAhp = `ahp {
		name "Shop"
		content_signals {
			ai_input true
		}
	}`
	skippingHandoff = `agent_handoff {
		provider X
		skip_proof_of_work https://chatgpt.com
	}`
)

// skip_proof_of_work is refused where nothing in the site verifies
// agents, and accepted wherever a verifying ahp can run before it.
func TestSkipProofOfWorkNeedsVerification(t *testing.T) {
	site := func(host string, body ...string) string {
		return "http://" + host + ":8080 {\n\t" + strings.Join(body, "\n\t") + "\n\treverse_proxy 127.0.0.1:9\n}\n"
	}
	for _, c := range []struct {
		name, in string
		refused  bool
	}{
		{"no ahp", site("api.test", skippingHandoff), true},
		{"ahp without verified_agents", site("api.test", plainAhp, skippingHandoff), true},
		{"another site verifies", site("www.test", verifyingAhp) + site("api.test", skippingHandoff), true},
		{"verified_agents off", site("api.test", strings.Replace(verifyingAhp, "verified_agents", "verified_agents off", 1), skippingHandoff), true},
		{"the site verifies", site("api.test", verifyingAhp, skippingHandoff), false},
		{"both sites verify", site("www.test", verifyingAhp) + site("api.test", verifyingAhp, skippingHandoff), false},
		{"written after agent_handoff", site("api.test", skippingHandoff, verifyingAhp), false},
		{"one site without a host", "http://:8080 {\n\t" + verifyingAhp + "\n\t" + skippingHandoff + "\n\trespond 404\n}\n", false},
		{"agent_handoff in a handle block", site("api.test", verifyingAhp, "handle {\n\t\t"+skippingHandoff+"\n\t\treverse_proxy 127.0.0.1:9\n\t}"), false},
		{"ahp in a route block", site("api.test", "route {\n\t\t"+verifyingAhp+"\n\t}", skippingHandoff), false},
	} {
		err := validate(t, c.in)
		switch {
		case c.refused && (err == nil || !strings.Contains(err.Error(), "agent_handoff skip_proof_of_work: nothing in this site verifies agents") ||
			!strings.Contains(err.Error(), "add verified_agents to the site's ahp block")):
			t.Errorf("%s: %v, want the refusal naming the fix", c.name, err)
		case !c.refused && err != nil:
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestSkipProofOfWorkCaddyfile(t *testing.T) {
	sites := adaptHandlers(t, `api.example.com {
	agent_handoff {
		provider X
		skip_proof_of_work https://chatgpt.com https://Agent.Example:443/
		skip_proof_of_work https://bot.example:8443
	}
	reverse_proxy 127.0.0.1:9
}
`)
	if want := `{"handler":"agent_handoff","provider":{"name":"X"},"skip_proof_of_work":["https://chatgpt.com","https://Agent.Example:443/","https://bot.example:8443"]}`; sites[0][0] != want {
		t.Fatalf("adapted:\n%s\nwant\n%s", sites[0][0], want)
	}
	// The exemption needs ahp's verification first: the default order
	// puts ahp before agent_handoff, whatever the Caddyfile's order.
	sites = adaptHandlers(t, "api.example.com {\n\t"+skippingHandoff+"\n\t"+verifyingAhp+"\n\treverse_proxy 127.0.0.1:9\n}\n")
	var names []string
	for _, h := range sites[0] {
		var v struct{ Handler string }
		_ = json.Unmarshal([]byte(h), &v)
		names = append(names, v.Handler)
	}
	if strings.Join(names, " ") != "ahp agent_handoff reverse_proxy" {
		t.Fatalf("order %v: ahp must run before agent_handoff, or skip_proof_of_work sees no verified agent", names)
	}

	for _, c := range []struct{ in, want string }{
		{"agent_handoff { skip_proof_of_work }", "skip_proof_of_work: want one or more agent origins"},
		{"agent_handoff { skip_proof_of_work http://agent.example }", `skip_proof_of_work "http://agent.example": Signature-Agent is not an https URL; name agents by the origin`},
		{"agent_handoff preview { skip_proof_of_work https://agent.example }", "preview: skip_proof_of_work belongs to the API site's agent_handoff block"},
		{"agent_handoff sandbox_content { skip_proof_of_work https://agent.example }", `sandbox_content: unknown option "skip_proof_of_work"`},
	} {
		var a AgentHandoff
		in := strings.ReplaceAll(strings.ReplaceAll(c.in, "{ ", "{\n"), " }", "\n}")
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
	// JSON configs are checked at provisioning.
	for _, c := range []struct {
		a    AgentHandoff
		want string
	}{
		{AgentHandoff{Provider: &HandoffProvider{Name: "X"}, SkipProofOfWork: []string{"chatgpt.com"}}, `agent_handoff skip_proof_of_work "chatgpt.com"`},
		{AgentHandoff{Mode: "preview", SkipProofOfWork: []string{"https://chatgpt.com"}}, "preview: skip_proof_of_work belongs to the API site's"},
		{AgentHandoff{Mode: "sandbox_content", SkipProofOfWork: []string{"https://chatgpt.com"}}, "sandbox_content: takes only"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := c.a.Provision(ctx)
		c.a.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.a, err, c.want)
		}
	}
}

// The exemption reads ahp's placeholders only: a listed, verified agent
// (its origin normalised as the verifier normalises it) is exempt; an
// unlisted one, an unverified request and a client's X-Ahp-Verified-Agent
// are not. A creation no verification ran for is logged once.
func TestSkipProofOfWorkExemption(t *testing.T) {
	core, logs := zapobserver.New(zap.WarnLevel)
	a := &AgentHandoff{SkipProofOfWork: []string{"https://Agent.Example:443/", "https://bot.example:8443"}, logger: zap.New(core)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	exempt, err := a.skipProofOfWork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := func(placeholders map[string]any, header string) *http.Request {
		r := httptest.NewRequest("POST", "/v1/sandboxes", nil)
		repl := caddy.NewReplacer()
		for k, v := range placeholders {
			repl.Set(k, v)
		}
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		if header != "" {
			r.Header.Set(VerifiedAgentHeader, header)
		}
		return r
	}
	verified := func(id string) map[string]any {
		return map[string]any{placeholderVerified: "true", placeholderAgent: id, placeholderOutcome: "verified"}
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"listed", req(verified("https://agent.example"), ""), "https://agent.example"},
		{"listed with a port", req(verified("https://bot.example:8443"), ""), "https://bot.example:8443"},
		{"unlisted", req(verified("https://other.example"), ""), ""},
		{"another port", req(verified("https://bot.example"), ""), ""},
		{"not verified", req(map[string]any{placeholderVerified: "false", placeholderAgent: "", placeholderOutcome: "invalid"}, "https://agent.example"), ""},
		{"verified false with an id", req(map[string]any{placeholderVerified: "false", placeholderAgent: "https://agent.example"}, ""), ""},
	} {
		if got := exempt(c.r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("warned although verification ran: %v", logs.All())
	}
	// No verification ran: the client's header alone exempts nobody, and
	// the operator is told once.
	for range 3 {
		if got := exempt(req(nil, "https://agent.example")); got != "" {
			t.Fatalf("a client's header exempted %q", got)
		}
	}
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].Message, "without passing ahp's verified_agents") {
		t.Fatalf("warnings: %v", logs.All())
	}
}
