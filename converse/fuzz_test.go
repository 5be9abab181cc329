package converse

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

const fuzzCeiling = 1000

// FuzzParse checks, for any body: Parse never panics; it accepts exactly
// what the official request schema (as extended by package schema)
// accepts, except for the refusals the spec adds on top (see
// explainedRefusal); every error is a well-formed 400; and ForwardBody
// returns JSON that parses to the same request without auth and with
// max_tokens capped (set to the ceiling when absent).
func FuzzParse(f *testing.F) {
	sch, err := schema.Compiled(schema.RequestSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(typical))
	for _, c := range errorCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(`{"auth":"t","capability":"book","query":"q","context":{"max_tokens":4e3,"accept_types":["text/answer"],"callback_url":"https://a.example/x","locale":"en-GB","requesting_agent":"a","user_intent":"b"},"session_id":null,"clarification":"c","ahp":"0.1"}`))
	f.Add([]byte(`{"capability":"get_video","query":"\ud83d\ude00","context":{"accept_types":["x-a/b"]}}`))

	r := testRules(Options{MaxTokensCeiling: fuzzCeiling})
	plain := testRules(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		perr := r.Parse(body, &req)
		if perr != nil {
			checkFuzzError(t, perr)
		}
		if accepts, decided := schemaAccepts(sch, body); decided {
			switch {
			case perr == nil && !accepts:
				t.Fatalf("Parse accepts what the schema rejects: %q", body)
			case perr != nil && accepts && !explainedRefusal(r, body, perr):
				t.Fatalf("Parse refuses what the schema accepts, without a documented reason: %v\nbody %q", perr, body)
			}
		}
		if perr != nil {
			return
		}

		fwd := r.ForwardBody(&req, body)
		if !json.Valid(fwd) {
			t.Fatalf("forwarded body is not JSON: %q (from %q)", fwd, body)
		}
		var again Request
		if err := plain.Parse(fwd, &again); err != nil {
			t.Fatalf("forwarded body %q does not parse: %v", fwd, err)
		}
		want := req
		want.Auth = ""
		want.Context.MaxTokens = min(want.Context.MaxTokens, fuzzCeiling)
		if want.Context.MaxTokens == 0 {
			want.Context.MaxTokens = fuzzCeiling // the ceiling holds for an agent that sends none
		}
		if !sameRequest(&again, &want) {
			t.Fatalf("forwarded body parses to\n%+v\nwant\n%+v", again, want)
		}
		if bytes.Contains(fwd, []byte(`"auth"`)) && req.Auth != "" && again.Auth != "" {
			t.Fatalf("auth forwarded: %q", fwd)
		}
		// An inserted ceiling changes nothing else, byte for byte.
		if req.edit.tokensTo == 0 && req.Auth == "" {
			ceiling := []byte(strconv.Itoa(fuzzCeiling))
			// The forms overlap ({} given an inner insertion reads like
			// an added context), so one of those found must undo it.
			found, undone := false, false
			for _, ins := range [][]byte{
				append(append([]byte(`,"context":{"max_tokens":`), ceiling...), '}'),
				append(append([]byte(`"max_tokens":`), ceiling...), ','),
				append([]byte(`"max_tokens":`), ceiling...),
			} {
				if i := bytes.Index(fwd, ins); i >= 0 && !bytes.Contains(body, ins) {
					found = true
					if rest := append(fwd[:i:i], fwd[i+len(ins):]...); bytes.Equal(rest, body) {
						undone = true
						break
					}
				}
			}
			if found && !undone {
				t.Fatalf("inserting the ceiling changed more: %q from %q", fwd, body)
			}
		}
		// The forwarded body needs no further change.
		if fwd2 := r.ForwardBody(&again, fwd); len(fwd2) != len(fwd) || &fwd2[0] != &fwd[0] {
			t.Fatalf("ForwardBody is not idempotent: %q then %q", fwd, fwd2)
		}
	})
}

func checkFuzzError(t *testing.T, e *ahperror.Error) {
	t.Helper()
	switch e.Code {
	case ahperror.InvalidRequest, ahperror.MissingField, ahperror.UnknownCapability, ahperror.UnsupportedType:
	default:
		t.Fatalf("unexpected code %q", e.Code)
	}
	if e.Status != 400 || e.Message == "" {
		t.Fatalf("bad error %d %q", e.Status, e.Message)
	}
	if b := e.AppendJSON(nil); !json.Valid(b) || !utf8.Valid(b) {
		t.Fatalf("error body is not valid JSON: %q", b)
	}
}

// hugeExponent matches numbers whose exact value the schema validator
// would compute with math/big at great cost.
var hugeExponent = regexp.MustCompile(`[eE][+-]?[0-9]{5,}`)

// schemaAccepts runs the compiled schema the way package schema's Check
// does. decided is false for inputs the oracle cannot judge cheaply.
func schemaAccepts(sch *jsonschema.Schema, body []byte) (accepts, decided bool) {
	if hugeExponent.Match(body) {
		return false, false
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return false, true
	}
	return sch.Validate(inst) == nil, true
}

// surrogateEscape finds \uD800-\uDFFF escapes (paired or not).
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F][0-9a-fA-F]{2}`)

// explainedRefusal reports whether refusing a schema-valid body is one of
// the documented extras, each checked here independently of Parse.
func explainedRefusal(r *Rules, body []byte, e *ahperror.Error) bool {
	switch e.Code {
	case ahperror.UnknownCapability, ahperror.UnsupportedType:
		var v struct {
			Capability string `json:"capability"`
			Context    struct {
				AcceptTypes []string `json:"accept_types"`
			} `json:"context"`
		}
		if json.Unmarshal(body, &v) != nil {
			return false
		}
		c := r.caps[v.Capability]
		if e.Code == ahperror.UnknownCapability {
			return c == nil
		}
		if c == nil || c.acceptFallback || len(v.Context.AcceptTypes) == 0 {
			return false
		}
		for _, a := range v.Context.AcceptTypes {
			for _, have := range c.responseTypes {
				if a == have {
					return false
				}
			}
		}
		return true
	case ahperror.InvalidRequest:
		return !utf8.Valid(body) || surrogateEscape.Match(body) || hasDuplicateKeys(body) || unprintableAgent(body)
	}
	return false
}

// unprintableAgent reports a context.requesting_agent with a character
// outside the graphic categories (letters, marks, numbers, punctuation,
// symbols, space separators): controls, format characters, line and
// paragraph separators, private use, unassigned code points.
func unprintableAgent(body []byte) bool {
	var v struct {
		Context struct {
			RequestingAgent string `json:"requesting_agent"`
		} `json:"context"`
	}
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	for _, r := range v.Context.RequestingAgent {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
			return true
		}
	}
	return false
}

// hasDuplicateKeys walks the tokens of valid JSON and reports an object
// with a repeated member name (after unescaping).
func hasDuplicateKeys(body []byte) bool {
	type frame struct {
		keys      map[string]bool // nil for arrays
		expectKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].expectKey {
				if stack[n-1].keys[v] {
					return true
				}
				stack[n-1].keys[v] = true
				stack[n-1].expectKey = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

func TestHasDuplicateKeys(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":1,"b":{"a":2}}`:          false,
		`{"a":1,"a":2}`:                true,
		`{"a":{"x":[{"y":1,"y":2}]}}`:  true,
		`{"a":"a","b":["a","a"]}`:      false,
		`{"a":{"b":1},"a":3}`:          true,
		`{"\u0061":1,"a":2}`:           true,
		`[{"k":1},{"k":2}]`:            false,
		`{"k":[],"j":{},"k2":{"k":1}}`: false,
	} {
		if got := hasDuplicateKeys([]byte(body)); got != want {
			t.Errorf("hasDuplicateKeys(%s) = %v", body, got)
		}
	}
}

// FuzzCheckCallbackURL checks that CheckCallback never panics, and never
// accepts a URL that is not https, carries user info, or whose host is a
// literal IP address (in any notation inet_aton or a browser reads) or a
// resolved address that the independent oracle below calls internal.
func FuzzCheckCallbackURL(f *testing.F) {
	for _, s := range []string{
		"https://agent.example/cb", "https://127.0.0.1/", "https://2130706433/", "https://0x7f.1/",
		"https://[::ffff:127.0.0.1]/", "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::1]/",
		"https://user@agent.example/", "http://agent.example/", "https://agent.example:443/x?y#z",
		"https://[fe80::1%25eth0]/", "https://metadata.google.internal/", "https://a.b.c.d.example./",
		"https://[::127.0.0.1]/", "https://8.8.8.8/", "https://[2606:4700::1111]/",
	} {
		f.Add(s)
	}
	pool := []netip.Addr{
		netip.MustParseAddr("93.184.215.14"),
		netip.MustParseAddr("2606:4700::1111"),
		netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("::ffff:127.0.0.1"),
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("64:ff9b::a00:1"),
		netip.MustParseAddr("168.63.129.16"),
		netip.MustParseAddr("::ffff:93.184.215.14"),
	}
	var answered []netip.Addr
	res := resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		h := fnv.New32a()
		h.Write([]byte(host))
		answered = []netip.Addr{pool[0], pool[h.Sum32()%uint32(len(pool))]}
		return answered, nil
	})
	r := testRules(Options{Resolver: res})
	f.Fuzz(func(t *testing.T, raw string) {
		answered = nil
		addrs, err := r.CheckCallback(context.Background(), raw)
		if err != nil {
			if err.Status != 400 || err.Code != ahperror.InvalidRequest || !json.Valid(err.AppendJSON(nil)) {
				t.Fatalf("bad refusal %+v", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || !strings.EqualFold(u.Scheme, "https") || u.User != nil || u.Host == "" {
			t.Fatalf("accepted %q (parse error %v)", raw, perr)
		}
		host := u.Hostname()
		if a, ok := inetAton(host); ok {
			canon, err := netip.ParseAddr(host)
			if err != nil || canon != a {
				t.Fatalf("accepted %q: host %q is %v in a non-standard notation", raw, host, a)
			}
		}
		if a, err := netip.ParseAddr(host); err == nil && oracleInternal(a) {
			t.Fatalf("accepted %q: %v is internal", raw, a)
		}
		for _, a := range answered {
			if oracleInternal(a) {
				t.Fatalf("accepted %q resolving to %v", raw, a)
			}
		}
		// The addresses returned are those checked: the literal host, or
		// the answers, each once.
		if len(addrs) == 0 {
			t.Fatalf("accepted %q without addresses", raw)
		}
		for i, a := range addrs {
			if oracleInternal(a) || slices.Contains(addrs[:i], a) || a.Is4In6() {
				t.Fatalf("accepted %q with addresses %v", raw, addrs)
			}
			lit, err := netip.ParseAddr(host)
			if !(err == nil && lit.Unmap() == a) && !slices.ContainsFunc(answered, func(b netip.Addr) bool { return b.Unmap() == a }) {
				t.Fatalf("accepted %q: %v was not checked (answers %v)", raw, a, answered)
			}
		}
	})
}

type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// oracleBad4 lists internal IPv4 space, written out independently of
// callback.go.
var oracleBad4 = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
		"168.63.129.16/32", // Azure's wire server
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// oracleInternal reports an address (or an IPv6 form embedding one) that a
// callback must never reach.
func oracleInternal(a netip.Addr) bool {
	a = a.WithZone("")
	if a.Is6() && !a.Is4In6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("::/96").Contains(a), netip.MustParsePrefix("64:ff9b::/96").Contains(a):
			return oracleInternal(netip.AddrFrom4([4]byte(b[12:]))) || a.IsLoopback() || a.IsUnspecified()
		case netip.MustParsePrefix("2002::/16").Contains(a):
			return oracleInternal(netip.AddrFrom4([4]byte(b[2:6])))
		}
		return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() ||
			netip.MustParsePrefix("fec0::/10").Contains(a)
	}
	a = a.Unmap()
	for _, p := range oracleBad4 {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// inetAton parses host the way inet_aton(3) and the WHATWG URL parser read
// IPv4 addresses: 1 to 4 parts, each decimal, octal (leading 0) or hex
// (0x), the last filling the remaining bytes. A final dot is ignored.
func inetAton(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil || p == "" {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

func TestInetAton(t *testing.T) {
	for in, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"127.1": "127.0.0.1", "10.1.258": "10.1.1.2", "1.2.3.4.": "1.2.3.4", "0x7f.0x0.0.01": "127.0.0.1",
	} {
		if got, ok := inetAton(in); !ok || got.String() != want {
			t.Errorf("inetAton(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"256.0.0.1", "1.2.3.4.5", "a.b", "08.0.0.1", "4294967296", ""} {
		if got, ok := inetAton(in); ok {
			t.Errorf("inetAton(%q) = %v", in, got)
		}
	}
}
