package gateway

import (
	"net/http"
	"strconv"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// admitCall admits a call being forwarded: its tier by capability,
// credentials and verified agent, and the shared windows.
func (g *Gateway) admitCall(h http.Header, r *http.Request, a *admission, action bool, cred auth.Result, agent string) *ahperror.Error {
	a.agent = agent
	return g.admit(h, r, a, g.tier(action, cred.Verified, agent != ""), true, cred)
}

// admit runs a call's one store round trip: the client's window in tier
// t and, for a call being admitted (full), the agent's window and the
// session's turn, which count only if the client's window admits it (they
// are shared by everyone; a refused call must not spend them). It sets
// the rate-limit headers on h and returns the refusal, if any.
//
// A tier that is off (t nil) turns off only the client's window: the
// agent's window, the session's turns and idle (spec §6.5) and its token
// budget (§11.4) are still decided, ungated.
//
// With a.holdFields, a call that is admitted leaves its rate-limit fields
// in a.fields for the answer (a refused one gets them on h).
func (g *Gateway) admit(h http.Header, r *http.Request, a *admission, t *ratelimit.Tier, full bool, cred auth.Result) *ahperror.Error {
	e := g.decide(h, r, a, t, full, cred)
	if e != nil {
		a.writeFields(h)
	}
	return e
}

func (g *Gateway) decide(h http.Header, r *http.Request, a *admission, t *ratelimit.Tier, full bool, cred auth.Result) *ahperror.Error {
	p := g.limits
	if p == nil || (t == nil && !full) {
		return nil
	}
	b := &a.batch
	b.Windows = a.windows[:0]
	b.Session = nil
	// A dry run forwards calls over the client's limit: what they spend
	// of the agent's window and the session is counted and checked too
	// (max_turns and idle are protocol errors, not rate limits).
	b.NoGate = p.DryRun()
	var tiers [2]*ratelimit.Tier // the tier of each window, for headers and scope
	if t != nil {
		tiers[0] = t
		b.Windows = append(b.Windows, p.Window(r, t))
	}
	agentWindow := -1
	if full && p.PerAgent != nil {
		if id := agentIdentity(a, cred); id != "" {
			agentWindow = len(b.Windows)
			tiers[agentWindow] = p.PerAgent
			b.Windows = append(b.Windows, limiter.WindowCheck{Key: p.AgentKey(id), Limit: p.PerAgent.Limit, Shared: true})
		}
	}
	if full && a.req.SessionID != "" {
		a.session = limiter.SessionCheck{
			ID:          p.SessionKey(a.req.SessionID),
			MaxTurns:    g.maxTurns,
			Idle:        g.idle,
			TokenBudget: p.Budget,
		}
		b.Session = &a.session
	}
	if len(b.Windows) == 0 && b.Session == nil {
		return nil
	}
	if err := p.Decide(r.Context(), b); err != nil {
		return p.Unavailable(h, err)
	}

	// Headers from the binding window: a refusing one, else the one with
	// the least remaining. A shared window the gate skipped decided
	// nothing.
	bind := -1
	for i := range b.Windows {
		if b.Windows[i].Skipped {
			continue
		}
		d := &b.Windows[i].Decision
		if bind < 0 {
			bind = i
			continue
		}
		best := &b.Windows[bind].Decision
		if (!d.Allowed && best.Allowed) || (d.Allowed == best.Allowed && d.Remaining < best.Remaining) {
			bind = i
		}
	}
	if bind >= 0 { // none with only a session to decide
		bt, d := tiers[bind], &b.Windows[bind].Decision
		if a.holdFields {
			p.Fields(&a.fields, bt, d)
			a.hasFields = true
		} else {
			p.WriteHeaders(h, bt, d)
		}
		if !d.Allowed {
			scope, msg := ahperror.ScopeIP, "Rate limit exceeded for this client: "+bt.Limit.String()+" ("+bt.Name+")."
			if bind == agentWindow {
				scope, msg = ahperror.ScopeAgent, "Rate limit exceeded for this agent identity: "+bt.Limit.String()+"."
			}
			if e := p.Refusal(h, r, bt, d, scope, msg); e != nil {
				return e
			}
		}
	}
	if s := b.Session; s != nil && !s.Skipped {
		switch s.Outcome {
		case limiter.SessionTooManyTurns:
			return ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
				"session '"+a.req.SessionID+"' has reached its limit of "+strconv.Itoa(g.maxTurns)+
					" turns (spec §6.5); start a new session by sending session_id null")
		case limiter.SessionExpired:
			return ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
				"session '"+a.req.SessionID+"' expired after "+g.idle.String()+
					" of inactivity (spec §6.5); start a new session by sending session_id null")
		case limiter.SessionOverBudget:
			if e := p.BudgetRefusal(h, r, g.idle); e != nil {
				return e
			}
		}
	}
	return nil
}

// agentIdentity is whom the per_agent window counts: the verified key's
// name when the credentials were verified, else the agent's Web Bot Auth
// identity when it proved one (no one else can spend those budgets), else
// the request's requesting_agent, a client-chosen hint anyone can claim
// (spec §8.1).
func agentIdentity(a *admission, cred auth.Result) string {
	if cred.Verified {
		return "key:" + cred.KeyID
	}
	if a.agent != "" {
		return "signed:" + a.agent
	}
	if a.req.Context.RequestingAgent != "" {
		return "name:" + a.req.Context.RequestingAgent
	}
	return ""
}
