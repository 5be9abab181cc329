package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// errBudget means the request budget is spent; checks that needed the
// request are skipped.
var errBudget = errors.New("request budget exhausted")

// errRateLimited means the site answered an earlier request of the same
// kind with 429: the checker does not spend the site's limit (nor its own
// budget) on requests it knows will be refused, and skips their checks.
var errRateLimited = errors.New("the site rate limited the checker")

// errUnresponsive means the last requests all timed out: the site is
// down or too slow for --timeout, and waiting out every remaining request
// would make the run last as long as the budget times the timeout.
var errUnresponsive = errors.New("the site did not answer the last requests within the timeout")

// errUnreachable means the manifest's request failed without an answer
// (refused, TLS, DNS): every other request would fail the same way, and
// the report would repeat the cause once per check.
var errUnreachable = errors.New("the site is unreachable")

// maxTimeoutsInARow is how many requests in a row may time out before the
// run stops sending.
const maxTimeoutsInARow = 3

// errOffSite refuses a request to another host than the site's.
var errOffSite = errors.New("not on the checked site")

// maxBody caps what is read of any answer (exchange.Truncated says when
// an answer was longer).
const maxBody = 4 << 20

// maxBodyText names maxBody for reports.
const maxBodyText = "4 MiB"

// maxRedirects bounds a followed chain.
const maxRedirects = 5

// client sends the checker's requests: sequential, paced, budgeted, same
// host only, with a timeout each.
type client struct {
	hc       *http.Client
	site     *url.URL
	ua       string
	budget   int
	used     int
	refused  int // requests not sent for want of budget
	timeouts int // requests in a row that timed out
	// unreachable, once set, is why the site could not be reached at
	// all: no more requests are sent.
	unreachable error
	interval    time.Duration
	timeout     time.Duration
	last        time.Time
	now         func() time.Time
}

func newClient(site *url.URL, opts Options) (*client, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	} else {
		c := *hc // never change the caller's client
		hc = &c
	}
	if len(opts.CACerts) > 0 || opts.Insecure {
		if err := configureTLS(hc, opts); err != nil {
			return nil, err
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Jar = nil // each request stands alone, as an agent's would
	interval := time.Duration(0)
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	return &client{hc: hc, site: site, ua: opts.UserAgent, budget: opts.Budget, interval: interval, timeout: opts.Timeout, now: opts.Now}, nil
}

// configureTLS gives the client's transport (a copy) the extra CAs or
// turns verification off.
func configureTLS(hc *http.Client, opts Options) error {
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return fmt.Errorf("CACerts and Insecure need an *http.Transport, not %T", hc.Transport)
	}
	cfg := &tls.Config{}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	if opts.Insecure {
		cfg.InsecureSkipVerify = true //nolint:gosec // asked for with --insecure, and the report says so
	} else {
		certs, err := parseCACerts(opts.CACerts)
		if err != nil {
			return err
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool() // no system roots here: the given CAs alone
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	hc.Transport = tr
	return nil
}

// parseCACerts reads PEM certificates; anything else in the file is an
// error rather than silently skipped (x509.CertPool.AppendCertsFromPEM
// would skip it, and the run would fail later on a TLS error that does
// not name the file).
func parseCACerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q, not CERTIFICATE (give the CA's certificate, not a key)", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
	}
	return certs, nil
}

// request is one request to send.
type request struct {
	Method string
	URL    *url.URL
	Header http.Header
	Body   []byte
	// Follow follows redirects within the site (GET and HEAD only).
	Follow bool
	// Timeout overrides the client's per-request timeout.
	Timeout time.Duration
	// RPCID, for a JSON-RPC request, stops reading a text/event-stream
	// answer at the event that holds the response with this id: an MCP
	// server may keep the stream open after it (Streamable HTTP says it
	// SHOULD close it, not MUST).
	RPCID int
}

// hop is one response of a (possibly redirected) exchange.
type hop struct {
	URL    string
	Status int
	Header http.Header
}

// exchange is a request and its final answer.
type exchange struct {
	Method string
	URL    string // the final URL
	Status int
	Header http.Header
	Body   []byte
	// Hops holds every response, redirects first, the final one last.
	Hops []hop
	// Date is the answer's Date header, or the local time it arrived.
	Date time.Time
	Err  error
	// Truncated: the answer was longer than maxBody; Body holds its
	// first maxBody bytes.
	Truncated bool
	// timeout is how long the request was given, for the message when
	// it ran out.
	timeout time.Duration
}

// what names the request for a report line: "GET https://site/path".
func (e *exchange) what() string { return e.Method + " " + e.URL }

// failed describes a transport failure for "saw".
func (e *exchange) failed() string {
	if errors.Is(e.Err, errBudget) {
		return "not sent: " + errBudget.Error() + " (raise --budget)"
	}
	if errors.Is(e.Err, errRateLimited) {
		return "not sent: " + e.Err.Error()
	}
	if errors.Is(e.Err, errUnreachable) {
		return "not sent: " + e.Err.Error()
	}
	if errors.Is(e.Err, errUnresponsive) {
		return fmt.Sprintf("not sent: the site did not answer the last %d requests within the timeout (raise --timeout, or check when the site answers)", maxTimeoutsInARow)
	}
	err := e.Err
	var ue *url.Error // "Get "http://…": …" repeats what what() says
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		within := "the timeout"
		if e.timeout > 0 {
			within = e.timeout.String()
		}
		return e.what() + ": no answer within " + within + " (raise --timeout if the site is slow rather than down)"
	}
	return e.what() + ": " + err.Error()
}

// summaryHeaders are the headers an exchange's summary keeps.
var summaryHeaders = append(append([]string{}, rateHeaderNames...), "Retry-After", "Content-Type")

// summary is the exchange without its body and hops, with only the
// headers the rate limit checks read.
func (e *exchange) summary() *exchange {
	s := &exchange{Method: e.Method, URL: e.URL, Status: e.Status, Date: e.Date, Err: e.Err}
	if e.Header != nil {
		s.Header = make(http.Header, len(summaryHeaders))
		for _, k := range summaryHeaders {
			if v := e.Header.Values(k); len(v) > 0 {
				s.Header[http.CanonicalHeaderKey(k)] = v
			}
		}
	}
	return s
}

// notSent: the checker did not send the request (budget, an earlier 429),
// so there is no answer to judge.
func (e *exchange) notSent() bool {
	return len(e.Hops) == 0 && (errors.Is(e.Err, errBudget) || errors.Is(e.Err, errRateLimited) || errors.Is(e.Err, errUnresponsive) || errors.Is(e.Err, errUnreachable))
}

// contentType is the media type without parameters, lowercased.
func (e *exchange) contentType() string { return httpx.MediaType(e.Header.Get("Content-Type")) }

// resolve turns a reference from the site (a path or URL) into a URL on
// the site, relative to base.
func (c *client) resolve(base *url.URL, ref string) (*url.URL, error) {
	u, err := base.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %v", ref, err)
	}
	if !c.sameSite(u) {
		// After a move to https, an http:// endpoint on the same host is
		// off the site too: say scheme and port, not only the host.
		return u, fmt.Errorf("%s is not on the site %s (another host, port or scheme): %w", u.Redacted(), c.site.Scheme+"://"+c.site.Host, errOffSite)
	}
	return u, nil
}

// sameSite: the same host and port, or http to https on the same host.
func (c *client) sameSite(u *url.URL) bool {
	if !strings.EqualFold(u.Hostname(), c.site.Hostname()) {
		return false
	}
	if u.Scheme == c.site.Scheme {
		return portOf(u) == portOf(c.site)
	}
	return c.site.Scheme == "http" && u.Scheme == "https" && u.Port() == ""
}

// siteHost is u's host without a default port: https://example.com:443
// is https://example.com.
func siteHost(u *url.URL) string {
	if p := u.Port(); p == "" || p != portOf(&url.URL{Scheme: u.Scheme}) {
		return u.Host
	}
	h := u.Hostname()
	if strings.Contains(h, ":") { // IPv6
		return "[" + h + "]"
	}
	return h
}

// sameHost: a and b name the same host and port, a default port written
// out or left out alike.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(siteHost(a), siteHost(b))
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// do sends the request (and the redirects it follows); transport failures
// are in the exchange's Err.
func (c *client) do(ctx context.Context, rq request) *exchange {
	ex := &exchange{Method: rq.Method, URL: rq.URL.String(), timeout: c.timeout}
	if rq.Timeout > 0 {
		ex.timeout = rq.Timeout
	}
	u := rq.URL
	for i := 0; ; i++ {
		if !c.sameSite(u) {
			ex.Err = fmt.Errorf("%s: %w", u.Redacted(), errOffSite)
			return ex
		}
		resp, body, err := c.once(ctx, rq, u)
		if err != nil {
			ex.Err = err
			return ex
		}
		ex.URL, ex.Status, ex.Header, ex.Body = u.String(), resp.StatusCode, resp.Header, body
		ex.Truncated = len(body) > maxBody
		if ex.Truncated {
			ex.Body = body[:maxBody]
		}
		ex.Hops = append(ex.Hops, hop{URL: u.String(), Status: resp.StatusCode, Header: resp.Header})
		ex.Date = c.now()
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			ex.Date = d
		}
		if !rq.Follow || (rq.Method != http.MethodGet && rq.Method != http.MethodHead) || !isRedirect(resp.StatusCode) {
			return ex
		}
		loc := resp.Header.Get("Location")
		if loc == "" || i == maxRedirects {
			return ex
		}
		next, err := u.Parse(loc)
		if err != nil || !c.sameSite(next) {
			return ex // not followed: the caller sees the redirect
		}
		u = next
	}
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// once sends one request, after the pacing interval, within the budget.
func (c *client) once(ctx context.Context, rq request, u *url.URL) (*http.Response, []byte, error) {
	if c.used >= c.budget {
		c.refused++
		return nil, nil, errBudget
	}
	if c.timeouts >= maxTimeoutsInARow {
		return nil, nil, errUnresponsive
	}
	if c.unreachable != nil {
		return nil, nil, c.unreachable
	}
	if wait := c.last.Add(c.interval).Sub(c.now()); wait > 0 && !c.last.IsZero() {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
	c.used++
	timeout := c.timeout
	if rq.Timeout > 0 {
		timeout = rq.Timeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if rq.Body != nil {
		body = bytes.NewReader(rq.Body)
	}
	req, err := http.NewRequestWithContext(rctx, rq.Method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range rq.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(req)
	c.last = c.now()
	if err != nil {
		c.noteTimeout(ctx, rctx)
		return nil, nil, err
	}
	defer resp.Body.Close()
	var b []byte
	if rq.RPCID != 0 && httpx.MediaType(resp.Header.Get("Content-Type")) == "text/event-stream" {
		b, err = readEventsUntil(io.LimitReader(resp.Body, maxBody), rq.RPCID)
	} else {
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1)) // one more byte tells a cut answer
	}
	if err != nil {
		c.noteTimeout(ctx, rctx)
		return nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	c.timeouts = 0
	return resp, b, nil
}

// noteTimeout counts a request that failed because its own timeout ran
// out (not the run's context).
func (c *client) noteTimeout(ctx, rctx context.Context) {
	if ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		c.timeouts++
	} else {
		c.timeouts = 0
	}
}

// readEventsUntil reads an SSE stream event by event up to the end of the
// event whose data is the JSON-RPC response with the id (or the end of
// the stream), and returns what it read.
func readEventsUntil(r io.Reader, id int) ([]byte, error) {
	br := bufio.NewReader(r)
	var body []byte
	var data []byte // the current event's data lines, joined by \n
	for {
		line, err := br.ReadBytes('\n') // the reader is capped at maxBody
		body = append(body, line...)
		text := bytes.TrimRight(line, "\r\n")
		switch {
		case len(text) == 0 && len(line) > 0: // the end of an event
			if len(data) > 0 {
				if _, ferr := findRPCResponse("application/json", data, id); ferr == nil {
					return body, nil
				}
			}
			data = data[:0]
		case bytes.HasPrefix(text, []byte("data:")):
			d := bytes.TrimPrefix(bytes.TrimPrefix(text, []byte("data:")), []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, d...)
		}
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// remaining is what is left of the budget.
func (c *client) remaining() int { return c.budget - c.used }
