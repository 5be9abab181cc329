package concierge

import (
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// FuzzAnswer: any question an agent may send (what converse.Parse
// admits: valid UTF-8, 1 to 4096 characters), and any clarification sent
// back in its session (by label, by number or as free text), is answered
// with a body the official response schema accepts, whose tokens_used
// and session_id are those Reply accounts, and whose answer keeps within
// the agent's max_tokens (give or take the rounding of the token estimate)
// when that leaves room for a quote: under a small budget the site's own
// summary and the first quote, cut to 16 tokens, are given regardless.
func FuzzAnswer(f *testing.F) {
	for _, s := range []struct{ q, cl string }{
		{"How do I care for oak?", ""}, {"hard wax oil", "2"}, {"hard wax oil", "caring for an oak table through the WINTER "},
		{"hard wax oil", "oak"}, {"hard wax oil", "-1"}, {"hard wax oil", "99999999999999999999"}, {"When is the showroom open?", ""},
		{"walnut desk", "and the desk?"}, {"Do you sell bamboo chairs?", ""}, {"オーク材の手入れ", "é"}, {"'s", " "},
	} {
		f.Add(s.q, s.cl, uint8(0), uint16(0))
		f.Add(s.q, s.cl, uint8(3), uint16(20))
		f.Add(s.q, s.cl, uint8(2), uint16(256))
	}
	c, _ := demoConcierge(f)
	caps := []string{"content_search", "site_info"}
	accepts := [][]string{nil, {"application/feed", "text/answer"}, {"media/video"}}
	f.Fuzz(func(t *testing.T, query, clarification string, shape uint8, maxTokens uint16) {
		if !utf8.ValidString(query) || !utf8.ValidString(clarification) || query == "" ||
			utf8.RuneCountInString(query) > 4096 || utf8.RuneCountInString(clarification) > 1024 {
			return // converse.Parse refuses it before any concierge
		}
		req := Request{Capability: caps[shape&1], Query: query, MaxTokens: int(maxTokens),
			AcceptTypes: accepts[int(shape>>1)%len(accepts)]}
		if req.Capability == "site_info" {
			req.AcceptTypes = nil
		}
		first := c.Answer(context.Background(), req)
		check(t, req, first)
		if clarification == "" {
			return
		}
		req.SessionID, req.Clarification = first.SessionID, clarification
		check(t, req, c.Answer(context.Background(), req))
	})
}

func check(t *testing.T, req Request, rep Reply) {
	t.Helper()
	if rep.Status != 200 {
		t.Fatalf("%+v: status %d: %s", req, rep.Status, rep.Body)
	}
	checkSchema(t, rep.Body)
	var env struct {
		Status    string `json:"status"`
		SessionID string `json:"session_id"`
		Response  struct {
			Answer json.RawMessage `json:"answer"`
		} `json:"response"`
		Meta struct {
			TokensUsed int `json:"tokens_used"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(rep.Body, &env); err != nil {
		t.Fatalf("%+v: %v: %s", req, err, rep.Body)
	}
	if env.Meta.TokensUsed != rep.TokensUsed || env.SessionID != rep.SessionID || rep.SessionID == "" ||
		(req.SessionID != "" && rep.SessionID != req.SessionID) {
		t.Fatalf("%+v: Reply %d %q, body %s", req, rep.TokensUsed, rep.SessionID, rep.Body)
	}
	var answer string
	if json.Unmarshal(env.Response.Answer, &answer) == nil && req.MaxTokens >= 256 && markdown.Tokens(answer) > req.MaxTokens+8 {
		t.Fatalf("%+v: %d tokens in the answer: %q", req, markdown.Tokens(answer), answer)
	}
}
