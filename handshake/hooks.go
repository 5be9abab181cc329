package handshake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// Hooks are the SDK's application hooks as HTTP calls to the site: a POST
// with a JSON body, either through the site's own handlers (Path: the
// request goes to next, as if a client had sent it, so it reaches the
// legacy site behind Caddy) or to an absolute URL.
//
// What they answer, and the failure policy (a hook that errs, answers 5xx
// or times out):
//
//   - create: 2xx, optionally {"owner": "..."} to bind an owner; 4xx
//     vetoes (the browser gets 403 with the hook's {"error"} message, or
//     "session creation denied"). Failure: 503, no session (fail closed:
//     a create hook is a guard).
//   - action: 2xx, optionally {"reject": ["key", ...]}; 4xx vetoes every
//     write of the request. Failure: every write is rejected with
//     {"key", "msg": "action hook failed"} in errors, as the SDK does with
//     a hook that raises.
//   - done: told after each batch; failures are logged and counted only.
//
// A 2xx answer that is neither empty nor a JSON object of those members
// in their types is a failed hook, not an approval. A path hook whose
// handlers return an error carrying a 4xx (Config.HandlerErrorStatus:
// basic_auth refusing the call) answered that 4xx.
//
// Every call carries X-Handshake-Hook: <name>, and the create hook gets
// the browser's Cookie and Authorization. A hook path is the plugin's: a
// client's request to it, in any spelling, is refused (it never reaches
// the site), and no client's X-Handshake-Hook (nor an '_' spelling of it)
// passes the handler, so a site behind it can trust the header. The
// create hook's URL must be https:// or loopback: it carries cookies.
type Hooks struct {
	Create, Action, Done *Hook
	// Timeout bounds each call (default 2s).
	Timeout time.Duration
	// Client makes URL hooks' calls (default: no redirects, no cookies).
	Client *http.Client
}

// Hook is one hook: exactly one of Path and URL.
type Hook struct {
	Path string
	URL  string
}

const maxHookAnswer = 64 << 10

var defaultHookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (hs *Hooks) check(prefix, wsPrefix string) error {
	for _, e := range []struct {
		name    string
		hk      *Hook
		cookies bool
	}{{"create", hs.Create, true}, {"action", hs.Action, false}, {"done", hs.Done, false}} {
		hk := e.hk
		if hk == nil {
			continue
		}
		switch {
		case (hk.Path == "") == (hk.URL == ""):
			return fmt.Errorf("handshake: hooks %s: give a path (/hooks/%s) or a URL", e.name, e.name)
		case hk.Path != "":
			if !strings.HasPrefix(hk.Path, "/") {
				return fmt.Errorf("handshake: hooks %s %q: a path must start with /", e.name, hk.Path)
			}
			if !plainPath(hk.Path) {
				return fmt.Errorf("handshake: hooks %s %q: want a plain path such as /hooks/%s (no query, wildcard, escape, ';' or trailing /)", e.name, hk.Path, e.name)
			}
			for _, p := range []string{prefix, wsPrefix} {
				if lp, lh := strings.ToLower(p), strings.ToLower(hk.Path); lh == lp || strings.HasPrefix(lh, lp+"/") {
					return fmt.Errorf("handshake: hooks %s %q: lies under prefix %s, which the plugin answers itself; use a path of the site", e.name, hk.Path, p)
				}
			}
		default:
			u, err := url.Parse(hk.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("handshake: hooks %s %q: want an http:// or https:// URL", e.name, redactURL(hk.URL))
			}
			if e.cookies && u.Scheme == "http" && !loopback(u.Hostname()) {
				return fmt.Errorf("handshake: hooks %s %q: this hook receives the browser's Cookie and Authorization, which must not cross the network in clear: use https://, a loopback address (127.0.0.1, [::1], localhost) or a path of the site (/hooks/%s)", e.name, redactURL(hk.URL), e.name)
			}
		}
	}
	return nil
}

// redactURL is a hook URL fit for an error message or a log line: without
// its userinfo password and its query, either of which may be the hook's
// credential (an unparsable URL loses everything after the scheme's "//"
// up to an '@' as well).
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.RawQuery != "" || u.ForceQuery {
			u.RawQuery, u.ForceQuery = "…", false
		}
		u.Fragment, u.RawFragment = "", ""
		return u.Redacted()
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?…"
	}
	if i := strings.LastIndexByte(raw, '@'); i >= 0 {
		start := strings.Index(raw, "//") + 2 // 1 when there is no "//"
		if start < 2 {
			start = 0
		}
		if start <= i {
			raw = raw[:start] + "xxxxx" + raw[i:]
		}
	}
	return raw
}

// paths are the distinct hook paths.
func (hs *Hooks) paths() []string {
	var ps []string
	for _, hk := range []*Hook{hs.Create, hs.Action, hs.Done} {
		if hk != nil && hk.Path != "" && !slices.Contains(ps, hk.Path) {
			ps = append(ps, hk.Path)
		}
	}
	return ps
}

// plainPath: literal segments only, spelled as pathguard guards them.
func plainPath(p string) bool {
	if len(p) < 2 || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("*?#%;\\", c) >= 0 {
			return false
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hookResult is a hook's answer.
type hookResult struct {
	status int
	body   []byte
}

var errHookStatus = errors.New("hook answered with a server error")

// call POSTs body to the hook. forward copies the browser's Cookie and
// Authorization (create only: the site identifies the logged-in user).
// A 5xx, a transport error or a timeout is an error.
func (h *Handler) call(r *http.Request, next Next, name string, hk *Hook, body []byte, forward bool) (hookResult, error) {
	timeout := h.cfg.Hooks.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var res hookResult
	var err error
	if hk.URL != "" {
		res, err = h.callURL(ctx, r, name, hk.URL, body, forward)
	} else {
		res, err = h.callPath(ctx, r, next, name, hk.Path, body, forward)
	}
	if err == nil && res.status >= 500 {
		err = fmt.Errorf("%w (%d)", errHookStatus, res.status)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		h.obs.HookFailed(name)
		// net/http's *url.Error quotes the whole URL, query credential
		// and userinfo included: log the cause and the redacted URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			h.log.Warn("handshake: hook failed", zapString("hook", name), zapString("url", redactURL(ue.URL)), zapString("op", ue.Op), zapErr(ue.Err))
		} else {
			h.log.Warn("handshake: hook failed", zapString("hook", name), zapErr(err))
		}
	}
	return res, err
}

func hookHeader(r *http.Request, name string, forward bool) http.Header {
	hd := http.Header{}
	hd["Content-Type"] = []string{"application/json"}
	hd["X-Handshake-Hook"] = []string{name}
	if forward {
		for _, k := range []string{"Cookie", "Authorization"} {
			if v := r.Header.Values(k); len(v) > 0 {
				hd[k] = append([]string(nil), v...)
			}
		}
	}
	return hd
}

func (h *Handler) callURL(ctx context.Context, r *http.Request, name, u string, body []byte, forward bool) (hookResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return hookResult{}, err
	}
	req.Header = hookHeader(r, name, forward)
	c := h.cfg.Hooks.Client
	if c == nil {
		c = defaultHookClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return hookResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHookAnswer))
	if err != nil {
		return hookResult{}, err
	}
	return hookResult{status: resp.StatusCode, body: b}, nil
}

func (h *Handler) callPath(ctx context.Context, r *http.Request, next Next, name, p string, body []byte, forward bool) (hookResult, error) {
	req := r.Clone(ctx)
	req.Method = http.MethodPost
	req.URL = &url.URL{Path: p}
	req.RequestURI = p
	req.Header = hookHeader(r, name, forward)
	req.Header["X-Forwarded-Host"] = []string{r.Host}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	rec := &hookRecorder{header: http.Header{}}
	if err := next.ServeHTTP(rec, req); err != nil {
		// An error with a 4xx status (caddyauth's 401) is the site's
		// answer to the call: a veto, as a written 4xx would be.
		if h.cfg.HandlerErrorStatus != nil {
			if st := h.cfg.HandlerErrorStatus(err); st >= 400 && st < 500 {
				if st == http.StatusUnauthorized || st == http.StatusForbidden || st == http.StatusProxyAuthRequired {
					if n, ok := h.hookAuthLog.Allow(h.now(), failureLogEvery); ok {
						h.log.Warn("handshake: a hook path was refused by the site's authentication (basic_auth, forward_auth); only the create hook carries the browser's credentials: exclude hook paths from authentication (clients cannot reach them) or they veto",
							zapString("hook", name), zapString("path", p), zapInt("status", st), zapInt("suppressed", n))
					}
				}
				return hookResult{status: st}, nil
			}
		}
		return hookResult{}, err
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return hookResult{status: rec.status, body: rec.body.Bytes()}, nil
}

// hookRecorder takes a hook's answer from the site's handlers.
type hookRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *hookRecorder) Header() http.Header { return w.header }
func (w *hookRecorder) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}
func (w *hookRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := maxHookAnswer - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// createHook asks the create hook. veto is the message for a 4xx; failed
// is set for a hook that could not decide.
func (h *Handler) createHook(r *http.Request, next Next, rec *Record, schema, context, meta []byte) (owner, veto string, failed bool) {
	b := []byte(`{"sessionId":`)
	b = jsonstr.AppendString(b, rec.ID)
	b = append(b, `,"mode":`...)
	b = jsonstr.AppendString(b, rec.Mode)
	b = append(b, `,"schema":`...)
	b = append(b, schema...)
	b = append(b, `,"context":`...)
	b = append(b, context...)
	b = append(b, `,"meta":`...)
	b = append(b, meta...)
	b = append(b, '}')
	res, err := h.call(r, next, "create", h.cfg.Hooks.Create, b, true)
	if err != nil {
		return "", "", true
	}
	var ans struct {
		Owner json.RawMessage `json:"owner"`
		Error string          `json:"error"`
	}
	if res.status >= 300 {
		_ = json.Unmarshal(res.body, &ans) // a veto is a veto, however it is worded
		if ans.Error == "" {
			ans.Error = "session creation denied"
		}
		return "", ans.Error, false
	}
	// A guard fails closed: a 2xx it cannot read (not a JSON object, an
	// owner that is no string or number) is a failed hook, not an
	// approval without an owner. An empty answer approves.
	if !readHookAnswer(res.body, &ans) {
		h.hookUnreadable("create")
		return "", "", true
	}
	switch kindOf(ans.Owner) {
	case kindString:
		owner, _ = jsonString(ans.Owner)
	case kindInt, kindFloat:
		owner = string(ans.Owner)
	case kindNull, kindInvalid: // null, or no owner member
	default:
		h.hookUnreadable("create")
		return "", "", true
	}
	return owner, "", false
}

// actionHook asks the action hook about the writes. It returns the keys
// vetoed (all=true: every write), or failed.
func (h *Handler) actionHook(r *http.Request, next Next, rec *Record, writes []Write) (veto map[string]bool, all, failed bool) {
	b := h.hookPrefix(rec)
	b = append(b, `,"actions":[`...)
	for i, w := range writes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"set","key":`...)
		b = jsonstr.AppendString(b, w.Key)
		b = append(b, `,"value":`...)
		b = append(b, w.Value...)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	res, err := h.call(r, next, "action", h.cfg.Hooks.Action, b, false)
	if err != nil {
		return nil, false, true
	}
	if res.status >= 300 {
		return nil, true, false
	}
	var ans struct {
		Reject []string `json:"reject"`
	}
	// An answer it cannot read ({"reject":"email"}, an HTML page) is a
	// failed hook, not "reject nothing": the hook meant to say something.
	if !readHookAnswer(res.body, &ans) {
		h.hookUnreadable("action")
		return nil, false, true
	}
	if len(ans.Reject) > 0 {
		veto = make(map[string]bool, len(ans.Reject))
		for _, k := range ans.Reject {
			veto[k] = true
		}
	}
	return veto, false, false
}

// readHookAnswer decodes a 2xx hook answer into ans: true for an empty
// answer (nothing to say) or a JSON object of the expected members, false
// for anything else.
func readHookAnswer(body []byte, ans any) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return true
	}
	return kindOf(body) == kindObject && json.Unmarshal(body, ans) == nil
}

// hookUnreadable logs and counts a hook whose 2xx answer could not be read.
func (h *Handler) hookUnreadable(name string) {
	h.obs.HookFailed(name)
	h.log.Warn("handshake: hook answer unreadable (want an empty body or a JSON object as documented)", zapString("hook", name))
}

// doneHook tells the site a batch is done; failures are only logged.
func (h *Handler) doneHook(r *http.Request, next Next, rec *Record, applied, rejected []string, errs [][]byte) {
	b := h.hookPrefix(rec)
	b = append(b, `,"applied":`...)
	b = jsonstr.AppendStrings(b, applied)
	b = append(b, `,"rejected":`...)
	b = jsonstr.AppendStrings(b, rejected)
	b = append(b, `,"errors":[`...)
	b = append(b, bytes.Join(errs, []byte{','})...)
	b = append(b, "]}"...)
	_, _ = h.call(r, next, "done", h.cfg.Hooks.Done, b, false)
}

func (h *Handler) hookPrefix(rec *Record) []byte {
	b := []byte(`{"sessionId":`)
	b = jsonstr.AppendString(b, rec.ID)
	b = append(b, `,"mode":`...)
	b = jsonstr.AppendString(b, rec.Mode)
	b = append(b, `,"owner":`...)
	if rec.Owner == "" {
		b = append(b, "null"...)
	} else {
		b = jsonstr.AppendString(b, rec.Owner)
	}
	return b
}
