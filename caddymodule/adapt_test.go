package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden JSON of testdata/adapt/*.caddyfiletest")

const separator = "\n----------\n"

// TestCaddyfileAdapt adapts every testdata/adapt/*.caddyfiletest (a
// Caddyfile, a line of dashes, the JSON `caddy adapt` must produce) and
// compares. Run with -update after an intended change, then read the diff.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(raw), separator)
			if !ok {
				t.Fatalf("%s has no %q separator", file, strings.TrimSpace(separator))
			}
			got, warnings, err := adapter.Adapt([]byte(caddyfile+"\n"), map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("adapt warning: %s", w.String())
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			if *update {
				if err := os.WriteFile(file, []byte(caddyfile+separator+pretty.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if pretty.String() != want {
				t.Errorf("adapted JSON differs from %s (run go test ./caddymodule -run TestCaddyfileAdapt -update and check the diff)\ngot:\n%s", file, pretty.String())
			}
		})
	}
}

// A rate_limit option's mistake fails at adapt time, naming the option
// and what it takes.
func TestRateLimitLeasesOption(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for in, want := range map[string]string{
		"leases sometimes": `ahp rate_limit leases "sometimes": want auto`,
		"leases":           "leases: want exactly one value",
	} {
		cfg := ":8080 {\n\tahp {\n\t\trate_limit {\n\t\t\t" + in + "\n\t\t}\n\t}\n}\n"
		_, _, err := adapter.Adapt([]byte(cfg), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", in, err, want)
		}
	}
}

// An option given twice in one block is refused at adapt time, naming the
// block, the option and the fix: taking the second silently would drop the
// first's settings (a second `rate_limit {}` losing `store redis` and
// `on_store_error closed`, a second `auth {}` losing the first's keys).
// TestRedisOutsideRateLimitNamesWhereItGoes: `redis` or `store` written
// in the site's ahp block is refused with where it belongs.
func TestRedisOutsideRateLimitNamesWhereItGoes(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, opt := range []string{"redis redis://127.0.0.1:6379/0", "store redis redis://127.0.0.1:6379/0"} {
		cfg := ":8080 {\n\tahp {\n\t\tname Shop\n\t\t" + opt + "\n\t}\n\treverse_proxy 127.0.0.1:9\n}\n"
		_, _, err := adapter.Adapt([]byte(cfg), nil)
		if err == nil || !strings.Contains(err.Error(), "rate_limit { store redis <url> }") || !strings.Contains(err.Error(), "{ ahp { redis <url> } }") {
			t.Errorf("%s: %v, want it pointed at rate_limit and the global option", opt, err)
		}
	}
}

func TestOptionGivenTwiceRefused(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	site := func(body string) string { return ":8080 {\n" + body + "\n\treverse_proxy 127.0.0.1:9\n}\n" }
	ahp := func(body string) string { return site("\tahp {\n\t\tname Shop\n" + body + "\n\t}") }
	for _, c := range []struct{ cfg, want string }{
		{ahp("auth {\n key {env.FIRST_KEY}\n}\nauth {\n key {env.SECOND_KEY}\n}"), "ahp auth: given twice; merge the two blocks"},
		{ahp("rate_limit {\n store redis redis://10.0.0.1:6379/0\n on_store_error closed\n}\nrate_limit {\n action 10/minute\n}"), "ahp rate_limit: given twice; merge the two blocks"},
		{ahp("rate_limit off\nrate_limit {\n action 10/minute\n}"), "ahp rate_limit: given twice"},
		{ahp("session {\n max_turns 3\n}\nsession {\n idle 1m\n}"), "ahp session: given twice"},
		{ahp("notice {\n text hi\n}\nnotice off"), "ahp notice: given twice"},
		{ahp("async {\n supported\n}\nasync {\n max_eta_seconds 5\n}"), "ahp async: given twice"},
		{ahp("mcp /mcp\nmcp /mcp2"), "ahp mcp: given twice"},
		{ahp("openapi /openapi.json\nopenapi /o.json"), "ahp openapi: given twice; keep one value"},
		{ahp("name Other"), "ahp name: given twice; keep one value"},
		{ahp("content_signals {\n ai_input true\n ai_input false\n}"), "ahp content_signals ai_input: given twice"},
		{ahp("link docs https://a.example\nlink docs https://b.example"), `ahp link "docs": given twice`},
		{ahp("capability ask {\n mode MODE2\n mode MODE3\n}"), `ahp capability "ask" mode: given twice`},
		{ahp("rate_limit {\n store memory\n on_store_error closed\n on_store_error open\n}"), "ahp rate_limit on_store_error: given twice"},
		{ahp("auth {\n keys_file /a\n keys_file /b\n}"), "ahp auth keys_file: given twice"},
		{ahp("session {\n idle 1m\n idle 2m\n}"), "ahp session idle: given twice"},
		{ahp("notice {\n text a\n text b\n}"), "ahp notice text: given twice"},
		{ahp("verified_agents {\n fetch on\n fetch off\n}"), "ahp verified_agents fetch: given twice"},
		{site("\thandshake_prompt {\n\t\thooks {\n\t\t\tcreate /hooks/create\n\t\t}\n\t\thooks {\n\t\t\tdone /hooks/done\n\t\t}\n\t}"), "handshake_prompt hooks: given twice; merge the two blocks"},
		{site("\thandshake_prompt {\n\t\thooks {\n\t\t\tdone /a\n\t\t\tdone /b\n\t\t}\n\t}"), "handshake_prompt hooks done: given twice"},
		{site("\thandshake_prompt {\n\t\tbrowser_auth cookie a\n\t\tbrowser_auth cookie b\n\t}"), "handshake_prompt browser_auth: given twice"},
		{site("\thandshake_prompt {\n\t\tstore redis redis://a:6379\n\t\tstore memory\n\t}"), "handshake_prompt store: given twice"},
		{"{\n\tahp {\n\t\tredis redis://a:6379\n\t}\n\tahp {\n\t\tredis redis://b:6379\n\t}\n}\n" + site("\tahp"), "ahp global option: given twice"},
		{"{\n\tahp {\n\t\tredis redis://a:6379\n\t\tredis redis://b:6379\n\t}\n}\n" + site("\tahp"), "ahp global option redis: given twice"},
	} {
		_, _, err := adapter.Adapt([]byte(c.cfg), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q, for\n%s", err, c.want, c.cfg)
		}
	}
	// Options meant to repeat still add up.
	for _, cfg := range []string{
		ahp("authentication bearer\nauth {\n key {env.FIRST_KEY}\n key {env.SECOND_KEY}\n}"),
		ahp("capability ask {\n mode MODE2\n}\ncapability buy {\n mode MODE3\n}"),
		ahp("link docs https://a.example\nlink terms https://b.example"),
		ahp("mcp {\n path /mcp\n origins https://a.example\n origins https://b.example\n hosts a.example\n hosts b.example\n}"),
		ahp("verified_agents {\n agents https://a.example\n agents https://b.example\n}"),
		site("\thandshake_prompt {\n\t\torigins a.example\n\t\torigins b.example\n\t}"),
	} {
		out, _, err := adapter.Adapt([]byte(cfg), nil)
		if err != nil {
			t.Errorf("a repeatable option refused: %v\n%s", err, cfg)
			continue
		}
		for _, v := range []string{"SECOND_KEY", "buy", "terms", "b.example"} {
			if strings.Contains(cfg, v) && !strings.Contains(string(out), v) {
				t.Errorf("%q lost from the adapted config of\n%s", v, cfg)
			}
		}
	}
}

// A value written where an option name belongs (the keyword forgotten:
// a Redis URL on its own line, a key without `key`), or an argument too
// many, is not echoed by the error: `caddy validate` output goes to
// terminals and CI logs. The error still says what is wrong.
func TestUnknownOptionHoldsNoSecret(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	const pass, key = "Pw0rdOfRedis", "sk_live_9f8e7d6c5b4a3210"
	url := "redis://:" + pass + "@10.0.0.1:6379/0"
	site := func(body string) string { return ":8080 {\n" + body + "\n\treverse_proxy 127.0.0.1:9\n}\n" }
	ahp := func(body string) string { return site("\tahp {\n\t\tname Shop\n" + body + "\n\t}") }
	for _, c := range []struct{ cfg, secret, want string }{
		{"{\n\tahp {\n\t\t" + url + "\n\t}\n}\n" + site("\tahp"), pass, "ahp global option: unknown option"},
		{"{\n\tahp {\n\t\tredis redis://10.0.0.1:6379 " + pass + "\n\t}\n}\n" + site("\tahp"), pass, "ahp global option redis"},
		{ahp(url), pass, "ahp: unknown option"},
		{ahp("rate_limit {\n store redis\n " + url + "\n}"), pass, "ahp rate_limit: unknown option"},
		{ahp("verified_agents {\n " + url + "\n}"), pass, "ahp verified_agents: unknown option"},
		{ahp("auth {\n " + key + "\n}"), key, "ahp auth: unknown option"},
		{site("\tagent_handoff {\n\t\t" + url + "\n\t}"), pass, "agent_handoff: unknown option"},
		{site("\thandshake_prompt {\n\t\t" + url + "\n\t}"), pass, "handshake_prompt: unknown option"},
	} {
		_, _, err := adapter.Adapt([]byte(c.cfg), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q, for\n%s", err, c.want, c.cfg)
			continue
		}
		if strings.Contains(err.Error(), c.secret) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	// A plain word still shows, for the typo it usually is.
	if _, _, err := adapter.Adapt([]byte(ahp("rate_limit {\n stroe memory\n}")), nil); err == nil || !strings.Contains(err.Error(), `unknown option "stroe"`) {
		t.Errorf("a misspelt option is not named: %v", err)
	}
}

// An option of a sub-block given no value, or two (an unset {$VAR} leaves
// none), is named with its block: "ahp zone" or "ahp text" sent the
// reader looking for options the ahp block does not have.
func TestOneValueErrorNamesTheBlock(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	ahp := func(body string) string {
		return ":8080 {\n\tahp {\n\t\tname Shop\n" + body + "\n\t}\n\treverse_proxy 127.0.0.1:9\n}\n"
	}
	for _, c := range []struct{ cfg, want string }{
		{ahp("rate_limit {\n zone {$AHP_TEST_UNSET}\n}"), "ahp rate_limit zone: want exactly one value, got 0"},
		{ahp("rate_limit {\n static 30 /minute\n}"), "ahp rate_limit static: want exactly one value, got 2"},
		{ahp("notice {\n text\n}"), "ahp notice text: want exactly one value"},
		{ahp("session {\n idle\n}"), "ahp session idle: want exactly one value"},
		{ahp("capability ask {\n mode\n}"), `ahp capability "ask" mode: want exactly one value`},
		{ahp("async {\n max_eta_seconds\n}"), "ahp async max_eta_seconds: want exactly one value"},
		{ahp("auth {\n keys_file\n}"), "ahp auth keys_file: want exactly one value"},
		{ahp("concierge builtin {\n host\n}"), "ahp concierge host: want exactly one value"},
		{ahp("markdown {\n max_size\n}"), "ahp markdown max_size: want exactly one value"},
		{ahp("description"), "ahp description: want exactly one value"},
	} {
		_, _, err := adapter.Adapt([]byte(c.cfg), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q, for\n%s", err, c.want, c.cfg)
		}
	}
}

// An option of a sub-block written directly in the ahp block is refused
// naming the block it belongs in, as agent_handoff's are: "see the README"
// left the operator to find that token_budget is rate_limit's.
func TestSubBlockOptionInAhpNamesItsBlock(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, c := range []struct{ opt, want string }{
		{"token_budget 5000/session", "token_budget goes inside rate_limit { }"},
		{"unauthenticated 10/minute", "unauthenticated goes inside rate_limit { }"},
		{"max_turns 5", "max_turns goes inside session { }"},
		{"keys_file /etc/caddy/keys", "keys_file goes inside auth { }"},
		{"ai_train false", "ai_train goes inside content_signals { }"},
		{"response_types text/answer", `response_types goes inside capability <name> { }`},
		{"text Hello", "text goes inside notice { }"},
		{"max_pages 100", "max_pages goes inside concierge builtin { }"},
		{"max_size 2MiB", "max_size goes inside markdown { }"},
		{"timeout 30s", "timeout goes inside rate_limit { } (the longest Redis decision); the concierge's wait is concierge_timeout"},
		{"origins https://a.example", "origins goes inside mcp { }"},
		{"pin https://a.example /k.jwks", "pin goes inside verified_agents { }"},
		{"key {env.K}", "key goes inside auth { } (a credential) or rate_limit { } (the client key)"},
		{"mode MODE2", "mode goes inside capability <name> { } (MODE1|MODE2|MODE3) or rate_limit { } (enforce|log)"},
	} {
		cfg := ":8080 {\n\tahp {\n\t\tname Shop\n\t\t" + c.opt + "\n\t}\n\treverse_proxy 127.0.0.1:9\n}\n"
		_, _, err := adapter.Adapt([]byte(cfg), nil)
		if err == nil || !strings.Contains(err.Error(), "ahp: unknown option") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s in the ahp block: got %v, want %q", c.opt, err, c.want)
		}
	}
}
