package caddymodule

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzCaddyfileOptions feeds arbitrary option text to the ahp directive's
// parser: it must never panic, and whatever it accepts must survive the
// JSON config (what `caddy adapt` emits and `caddy run` loads).
func FuzzCaddyfileOptions(f *testing.F) {
	for _, seed := range []string{
		"name \"x\"\ncontent_signals {\nai_input true\n}",
		"capability a {\nmode MODE2\ndescription d\nresponse_types text/answer\naccept_fallback\n}",
		"rate_limit {\nstore redis redis://127.0.0.1:6379/0\nunauthenticated 30/minute\ntoken_budget 100/session\n}",
		"rate_limit off\nnotice off\ndiscovery inline",
		"session {\nmax_turns 3\nidle 1m\n}\nauth {\nkey {env.X}\n}\nbody_limit 8KB\nmax_tokens 100",
		"async {\nsupported\nmax_eta_seconds 5\n}\nlink docs https://x",
		"content /llms.txt ./llms.txt\nconverse /agent/converse",
		"notice {\ntext \"<script>\"\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, options string) {
		blocks, err := caddyfile.Parse("fuzz", []byte(":80 {\n\tahp {\n"+options+"\n\t}\n}\n"))
		if err != nil || len(blocks) != 1 {
			return
		}
		for _, seg := range blocks[0].Segments {
			if seg.Directive() != "ahp" {
				continue
			}
			h := new(Handler)
			if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(seg)); err != nil {
				return
			}
			raw, err := json.Marshal(h)
			if err != nil {
				t.Fatalf("accepted options do not marshal: %v", err)
			}
			var back Handler
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatalf("config does not load back: %v\n%s", err, raw)
			}
			again, _ := json.Marshal(&back)
			if string(again) != string(raw) {
				t.Fatalf("config changes through JSON:\n%s\n%s", raw, again)
			}
		}
	})
}

// fuzzDispenser is caddyfile.NewTestDispenser for fuzz input: that one
// calls log.Fatalf on input Caddy cannot tokenize (an unterminated
// heredoc, "<<Y\n00"), which ends the fuzzing process itself; such input
// is no Caddyfile, and has nothing to say of the parsers.
func fuzzDispenser(in string) (*caddyfile.Dispenser, bool) {
	tokens, err := caddyfile.Tokenize([]byte(in), "fuzz")
	if err != nil {
		return nil, false
	}
	return caddyfile.NewDispenser(tokens), true
}
