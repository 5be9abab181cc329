package converse

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/ahperror"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// fakeResolver answers from a table; names not in it do not exist.
type fakeResolver struct {
	answers map[string][]string
	calls   atomic.Int32
}

var errNoSuchHost = errors.New("no such host")

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.calls.Add(1)
	if network != "ip" {
		return nil, errors.New("unexpected network " + network)
	}
	if host == "slow.example" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ans, ok := f.answers[host]
	if !ok {
		return nil, errNoSuchHost
	}
	out := make([]netip.Addr, len(ans))
	for i, a := range ans {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{answers: map[string][]string{
		"agent.example":         {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"v6only.example":        {"2a00:1450:4001:81d::200e"},
		"rebind.example":        {"127.0.0.1"},
		"private.example":       {"10.1.2.3"},
		"private172.example":    {"172.16.5.4"},
		"private192.example":    {"192.168.1.1"},
		"cgnat.example":         {"100.64.0.1"},
		"linklocal.example":     {"169.254.10.10"},
		"metadata.example":      {"169.254.169.254"},
		"alibaba.example":       {"100.100.100.200"},
		"ula.example":           {"fd12:3456:789a::1"},
		"ec2v6.example":         {"fd00:ec2::254"},
		"v6loop.example":        {"::1"},
		"v6linklocal.example":   {"fe80::1"},
		"mapped.example":        {"::ffff:10.0.0.1"},
		"mapped-meta.example":   {"::ffff:169.254.169.254"},
		"mixed.example":         {"93.184.215.14", "10.0.0.7"},
		"mixed-last.example":    {"2606:2800:21f:cb07::1", "93.184.215.14", "fc00::5"},
		"multicast.example":     {"239.1.2.3"},
		"zero.example":          {"0.0.0.0"},
		"empty.example":         {},
		"nat64.example":         {"64:ff9b::a9fe:a9fe"}, // 169.254.169.254
		"nat64-public.example":  {"64:ff9b::5db8:d70e"}, // 93.184.215.14
		"sixtofour.example":     {"2002:7f00:1::1"},     // 127.0.0.1
		"azure-wire.example":    {"93.184.215.14", "168.63.129.16"},
		"azure-wire-v6.example": {"64:ff9b::a83f:8110"}, // NAT64 of 168.63.129.16
		"repeats.example": {"93.184.215.14", "2606:2800:21f:cb07::1", "::ffff:93.184.215.14", "93.184.215.14",
			"2606:2800:21f:cb07::1", "93.184.215.15"},
	}}
}

func TestCheckCallback(t *testing.T) {
	tests := []struct {
		url string
		msg string // "" means accepted; else a substring of the refusal
	}{
		// Accepted.
		{"https://agent.example/callback", ""},
		{"https://agent.example:8443/cb?id=1#x", ""},
		{"https://AGENT.example./cb", ""},
		{"https://v6only.example/", ""},
		{"https://93.184.215.14/cb", ""},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/cb", ""},
		{"https://nat64-public.example/", ""},
		{"https://[2002:5db8:d70e::1]/", ""}, // 6to4 of a public address
		{"https://168.63.129.17/", ""},       // Azure's wire server's neighbour is just public

		// Azure's wire server, a public address reachable from every VM.
		{"https://168.63.129.16/machine?comp=goalstate", "168.63.129.16 is a cloud metadata address"},
		{"https://[::ffff:168.63.129.16]/", "cloud metadata"},
		{"https://azure-wire.example/", "resolves to 168.63.129.16, a cloud metadata address"},
		{"https://azure-wire-v6.example/", "cloud metadata"},

		// Scheme, user info, host syntax.
		{"http://agent.example/cb", "scheme must be https"},
		{"ftp://agent.example/cb", "scheme must be https"},
		{"HTTPS://agent.example/cb", ""},
		{"https://user@agent.example/cb", "user info"},
		{"https://user:pass@agent.example/cb", "user info"},
		{"https://:@agent.example/cb", "user info"},
		{"https:///cb", "no host"},
		{"https:agent.example", "not a valid absolute URL"},
		{"/relative", "scheme must be https"},
		{"https://agent.example\\@127.0.0.1/", "backslash"},
		{"https://agent.example /", "space"},
		{"https://%31%32%37.0.0.1/", "not a valid absolute URL"},
		{"https://agent.exam%70le/", "not a valid absolute URL"},
		{"https://agent.example:0/", "port is invalid"},
		{"https://agent.example:99999/", "port is invalid"},
		{"https://agent.example:/", "port is empty"},
		{"https://ag_ent.example/", "could not be resolved"}, // valid syntax, no answer
		{"https://-agent.example/", "not a valid DNS name"},
		{"https://agent..example/", "not a valid DNS name"},
		{"https://bücher.example/", "non-ASCII"},
		{"https://xn--bcher-kva.example/", "could not be resolved"},

		// Literal addresses.
		{"https://127.0.0.1/", "127.0.0.1 is a loopback address"},
		{"https://127.8.9.10:8443/", "loopback"},
		{"https://10.0.0.1/", "private address"},
		{"https://172.31.255.255/", "private address"},
		{"https://192.168.0.1/", "private address"},
		{"https://169.254.169.254/latest/meta-data/", "cloud metadata"},
		{"https://169.254.1.1/", "link-local"},
		{"https://100.64.1.1/", "CGNAT"},
		{"https://100.100.100.200/", "cloud metadata"},
		{"https://192.0.0.192/", "cloud metadata"},
		{"https://0.0.0.0/", "unspecified"},
		{"https://0.1.2.3/", "this network"},
		{"https://224.0.0.1/", "multicast"},
		{"https://255.255.255.255/", "broadcast"},
		{"https://240.0.0.1/", "special-purpose"},
		{"https://198.18.0.1/", "special-purpose"},
		{"https://192.0.2.1/", "special-purpose"},
		{"https://[::1]/", "loopback"},
		{"https://[::]/", "unspecified"},
		{"https://[fe80::1]/", "link-local"},
		{"https://[fe80::1%25eth0]/", "percent-encoded"},
		{"https://[fc00::1]/", "private"},
		{"https://[fd00:ec2::254]/", "cloud metadata"},
		{"https://[ff02::1]/", "multicast"},
		{"https://[::ffff:127.0.0.1]/", "loopback"},
		{"https://[::ffff:7f00:1]/", "loopback"},
		{"https://[::ffff:169.254.169.254]/", "cloud metadata"},
		{"https://[::ffff:10.0.0.1]/", "private"},
		{"https://[::127.0.0.1]/", "loopback address (IPv4-compatible IPv6 form)"},
		{"https://[::8.8.8.8]/", "deprecated IPv4-compatible"},
		{"https://[64:ff9b::7f00:1]/", "loopback address (NAT64 form)"},
		{"https://[64:ff9b::a9fe:a9fe]/", "cloud metadata address (NAT64 form)"},
		{"https://[64:ff9b:1::1]/", "not a global unicast"},
		{"https://[2002:a9fe:a9fe::1]/", "cloud metadata address (6to4 form)"},
		{"https://[2002:c0a8:0101::1]/", "private address (6to4 form)"},
		{"https://[2001:db8::1]/", "special-purpose"},
		{"https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "special-purpose"}, // Teredo
		{"https://[100::1]/", "not a global unicast"},
		{"https://[fec0::1]/", "not a global unicast"},

		// IPv4 in notations resolvers and browsers accept.
		{"https://2130706433/", "non-standard notation"},
		{"https://017700000001/", "non-standard notation"},
		{"https://0x7f000001/", "non-standard notation"},
		{"https://0x7f.0.0.1/", "non-standard notation"},
		{"https://0177.0.0.1/", "non-standard notation"},
		{"https://127.1/", "non-standard notation"},
		{"https://127.0.0.1./", "non-standard notation"},
		{"https://010.0.0.1/", "non-standard notation"},
		{"https://1.2.3.4.5/", "non-standard notation"},
		{"https://134744072/", "non-standard notation"}, // 8.8.8.8: refused all the same
		{"https://agent.0x10/", "non-standard notation"},

		// Names internal by convention: refused without a lookup.
		{"https://localhost/", "not a fully qualified domain name"},
		{"https://LOCALHOST./", "not a fully qualified domain name"},
		{"https://api.localhost/", "internal name"},
		{"https://metadata.google.internal/computeMetadata/v1/", "internal name"},
		{"https://metadata/", "not a fully qualified"},
		{"https://printer.local/", "internal name"},
		{"https://router.home.arpa/", "internal name"},
		{"https://db.localdomain/", "internal name"},
		{"https://intranet/", "not a fully qualified"},

		// DNS answers.
		{"https://rebind.example/", "resolves to 127.0.0.1, a loopback address"},
		{"https://private.example/", "10.1.2.3, a private address"},
		{"https://private172.example/", "private"},
		{"https://private192.example/", "private"},
		{"https://cgnat.example/", "CGNAT"},
		{"https://linklocal.example/", "link-local"},
		{"https://metadata.example/", "169.254.169.254, a cloud metadata address"},
		{"https://alibaba.example/", "cloud metadata"},
		{"https://ula.example/", "private (unique local)"},
		{"https://ec2v6.example/", "cloud metadata"},
		{"https://v6loop.example/", "loopback"},
		{"https://v6linklocal.example/", "link-local"},
		{"https://mapped.example/", "resolves to 10.0.0.1, a private address"},
		{"https://mapped-meta.example/", "cloud metadata"},
		{"https://mixed.example/", "resolves to 10.0.0.7"},
		{"https://mixed-last.example/", "fc00::5"},
		{"https://multicast.example/", "multicast"},
		{"https://zero.example/", "unspecified"},
		{"https://nat64.example/", "NAT64"},
		{"https://sixtofour.example/", "6to4"},
		{"https://empty.example/", "could not be resolved"},
		{"https://nxdomain.example/", "could not be resolved"},
		{"https://slow.example/", "could not be resolved"},
	}
	res := newFakeResolver()
	r := testRules(Options{Resolver: res, LookupTimeout: 50 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			addrs, err := r.CheckCallback(context.Background(), tt.url)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(addrs) == 0 {
					t.Fatal("accepted without addresses")
				}
				for _, a := range addrs {
					if badAddr(a) != "" {
						t.Errorf("returned %s, %s", a, badAddr(a))
					}
				}
				return
			}
			if addrs != nil {
				t.Errorf("a refusal returned addresses %v", addrs)
			}
			if err == nil {
				t.Fatalf("accepted, want a refusal mentioning %q", tt.msg)
			}
			if err.Status != 400 || err.Code != ahperror.InvalidRequest {
				t.Errorf("got %d %s, want 400 invalid_request", err.Status, err.Code)
			}
			if !strings.Contains(err.Message, tt.msg) || !strings.HasPrefix(err.Message, "context.callback_url") {
				t.Errorf("message %q does not say %q", err.Message, tt.msg)
			}
			assertSchemaValidError(t, err)
		})
	}
}

func TestCheckCallbackNoLookupForRefusedNames(t *testing.T) {
	res := newFakeResolver()
	r := testRules(Options{Resolver: res})
	for _, u := range []string{"https://localhost/", "https://metadata.google.internal/", "https://2130706433/", "http://agent.example/", "https://127.0.0.1/"} {
		if _, err := r.CheckCallback(context.Background(), u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if n := res.calls.Load(); n != 0 {
		t.Errorf("%d lookups for URLs refused on their syntax alone", n)
	}
}

func TestCheckCallbackAllowHTTP(t *testing.T) {
	r := testRules(Options{Resolver: newFakeResolver(), AllowHTTPCallbacks: true})
	if _, err := r.CheckCallback(context.Background(), "http://agent.example/cb"); err != nil {
		t.Errorf("http refused with AllowHTTPCallbacks: %v", err)
	}
	// AllowHTTPCallbacks relaxes the scheme only.
	if _, err := r.CheckCallback(context.Background(), "http://127.0.0.1:8080/cb"); err == nil {
		t.Error("loopback accepted with AllowHTTPCallbacks")
	}
}

func TestCheckCallbackAllowedNets(t *testing.T) {
	r := testRules(Options{
		Resolver:            newFakeResolver(),
		AllowHTTPCallbacks:  true,
		AllowedCallbackNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
	})
	for _, u := range []string{"http://127.0.0.1:8080/cb", "https://[::ffff:127.0.0.1]/", "https://private.example/", "https://agent.example/"} {
		if _, err := r.CheckCallback(context.Background(), u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"https://localhost/", "https://[::1]/", "https://169.254.169.254/", "https://mixed-last.example/"} {
		if _, err := r.CheckCallback(context.Background(), u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestCheckCallbackCanceledContext(t *testing.T) {
	r := testRules(Options{Resolver: newFakeResolver()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.CheckCallback(ctx, "https://slow.example/"); err == nil {
		t.Error("accepted after the lookup was canceled")
	}
}

// TestCallbackAddrs: the addresses checked are those returned, in the
// resolver's order, each once, IPv4-mapped answers as IPv4, and the header
// value lists them (DNS rebinding, security issue point 11).
func TestCallbackAddrs(t *testing.T) {
	r := testRules(Options{Resolver: newFakeResolver()})
	for _, tc := range []struct{ url, want string }{
		{"https://repeats.example/cb", "93.184.215.14, 2606:2800:21f:cb07::1, 93.184.215.15"},
		{"https://agent.example/", "93.184.215.14, 2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		{"https://v6only.example/", "2a00:1450:4001:81d::200e"},
		{"https://93.184.215.14:8443/", "93.184.215.14"},
		{"https://[2606:2800:21f:cb07::1]/", "2606:2800:21f:cb07::1"},
		{"https://[::ffff:93.184.215.14]/", "93.184.215.14"},
	} {
		addrs, err := r.CheckCallback(context.Background(), tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := FormatCallbackAddrs(addrs); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
		}
	}
	if got := FormatCallbackAddrs(nil); got != "" {
		t.Errorf("no addresses: %q", got)
	}
	if got := FormatCallbackAddrs([]netip.Addr{netip.MustParseAddr("fe80::1%eth0")}); got != "fe80::1" {
		t.Errorf("a zone was kept: %q", got)
	}
	if CallbackAddrsHeader != http.CanonicalHeaderKey("X-AHP-Callback-Addrs") {
		t.Errorf("CallbackAddrsHeader %q is not canonical", CallbackAddrsHeader)
	}
}

func TestRefusedAddrAndHost(t *testing.T) {
	for addr, refused := range map[string]bool{"93.184.216.34": false, "127.0.0.1": true, "10.1.2.3": true, "169.254.169.254": true, "168.63.129.16": true, "::ffff:10.0.0.1": true, "2606:4700::1111": false} {
		if got := RefusedAddr(netip.MustParseAddr(addr), nil) != ""; got != refused {
			t.Errorf("RefusedAddr(%s) refused %v, want %v", addr, got, refused)
		}
	}
	if RefusedAddr(netip.MustParseAddr("10.1.2.3"), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) != "" {
		t.Error("an allowed network was refused")
	}
	for host, refused := range map[string]bool{"example.com": false, "localhost": true, "LOCALHOST.": true, "metadata.google.internal": true} {
		if got := RefusedHost(host) != ""; got != refused {
			t.Errorf("RefusedHost(%s) refused %v, want %v", host, got, refused)
		}
	}
}

func TestPrecheckCallback(t *testing.T) {
	r := NewRules(&manifest.Manifest{}, Options{Resolver: failingResolver{}})
	for raw, refused := range map[string]bool{
		"https://169.254.169.254/x": true, "http://93.184.216.34/x": true, "https://user@93.184.216.34/x": true,
		"https://localhost/x": true, "https://metadata.google.internal/x": true,
		"https://93.184.216.34/x": false, "https://example.com/hook": false, // the lookup comes later
	} {
		if got := r.PrecheckCallback(raw) != nil; got != refused {
			t.Errorf("PrecheckCallback(%s) refused %v, want %v", raw, got, refused)
		}
	}
}

type failingResolver struct{}

func (failingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	panic("PrecheckCallback must not look anything up")
}
