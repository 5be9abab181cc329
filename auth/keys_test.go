package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	file := `
# partner keys
   # indented comment
Zq3xV9tL0pR7mK2wY8bN4cH6
partner-portal: 7fJ2kL9mQ4rT8vX1zB5nC3dG
  ops.team_1 :   aaaaaaaaaaaaaaaa	

`
	k, err := ParseKeys(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 3 {
		t.Fatalf("Len = %d, want 3", k.Len())
	}
	sum := sha256.Sum256([]byte("Zq3xV9tL0pR7mK2wY8bN4cH6"))
	for cred, id := range map[string]string{
		"Zq3xV9tL0pR7mK2wY8bN4cH6": "sha256:" + hex.EncodeToString(sum[:6]),
		"7fJ2kL9mQ4rT8vX1zB5nC3dG": "partner-portal",
		"aaaaaaaaaaaaaaaa":         "ops.team_1",
	} {
		got, ok := k.Verify(cred)
		if !ok || got != id {
			t.Errorf("Verify(%q) = %q, %v; want %q", cred, got, ok, id)
		}
	}
	for _, bad := range []string{"", "Zq3xV9tL0pR7mK2wY8bN4cH", "Zq3xV9tL0pR7mK2wY8bN4cH6 ", "partner-portal: 7fJ2kL9mQ4rT8vX1zB5nC3dG", "partner-portal"} {
		if id, ok := k.Verify(bad); ok {
			t.Errorf("Verify(%q) matched %q", bad, id)
		}
	}
	if got := fmt.Sprint(k) + fmt.Sprintf("%+v %#v", k, *k); strings.Contains(got, "Zq3x") || strings.Contains(got, "7fJ2") {
		t.Errorf("printing Keys shows a key: %s", got)
	}
	if ids := k.IDs(); len(ids) != 3 || ids[1] != "partner-portal" {
		t.Errorf("IDs = %v", ids)
	}
}

func TestParseKeysErrors(t *testing.T) {
	tests := []struct {
		file string
		msg  string
	}{
		{"# c\nshortkey\n", "line 2: key is 8 characters long, at least 16"},
		{"aaaaaaaaaaaaaaaa\n\n  name:  short\n", "line 3: key is 5 characters long"},
		{"aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb\naaaaaaaaaaaaaaaa\n", "line 3: the same key as entry 1"},
		{"a: aaaaaaaaaaaaaaaa\na: bbbbbbbbbbbbbbbb\n", `line 2: the key name is already used by entry 1`},
		{"two words aaaaaaaaaaaaaaaa\n", `line 1: expected "key" or "name: key"`},
		{"bad name!: aaaaaaaaaaaaaaaa\n", `line 1: the text before ':' is not a key name: a name may hold only`},
		{": aaaaaaaaaaaaaaaa\n", "line 1: key name must be 1 to 64"},
		{"n: aaaaaaaa:aaaaaaaa\n", `line 1: expected "key" or "name: key"`},
		{"aaaaaaaaaaaaaaa\u00e9\n", `line 1: expected "key" or "name: key"`},
		{"n:\n", "line 1: expected"},
	}
	for _, tt := range tests {
		_, err := ParseKeys(strings.NewReader(tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseKeys(%q) = %v, want %q", tt.file, err, tt.msg)
			continue
		}
		// Messages end up in logs: they must not contain key material.
		for _, line := range strings.Split(tt.file, "\n") {
			if f := strings.Fields(line); len(f) > 0 && len(f[len(f)-1]) >= 5 && strings.Contains(err.Error(), f[len(f)-1]) && !strings.HasSuffix(f[len(f)-1], "!:") {
				t.Errorf("error %q contains key material %q", err, f[len(f)-1])
			}
		}
	}
}

// A key holding ':' is read as "name: key"; the error names the line and
// what a name holds, never the text before the ':' (a piece of the key).
func TestParseKeysErrorHidesKeyPiece(t *testing.T) {
	for _, file := range []string{
		"Zm9v+YmFy/SECRETpart:tail0123456789abcdef\n",
		"SECRETpart: aaaaaaaaaaaaaaaa\nSECRETpart: bbbbbbbbbbbbbbbb\n",
	} {
		_, err := ParseKeys(strings.NewReader(file))
		if err == nil || !strings.Contains(err.Error(), "keys file line ") {
			t.Errorf("ParseKeys(%q) = %v, want an error naming the line", file, err)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("the error quotes a piece of the key: %v", err)
		}
	}
}

func TestNewKeys(t *testing.T) {
	k, err := NewKeys("aaaaaaaaaaaaaaaa", " ci: bbbbbbbbbbbbbbbb ")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := k.Verify("bbbbbbbbbbbbbbbb"); !ok || id != "ci" {
		t.Errorf("Verify = %q %v", id, ok)
	}
	if _, err := NewKeys("aaaaaaaaaaaaaaaa", ""); err == nil || !strings.Contains(err.Error(), "key 2 is empty") {
		t.Errorf("empty value: %v", err)
	}
	if _, err := NewKeys("short"); err == nil || !strings.Contains(err.Error(), "key 1: key is 5 characters") {
		t.Errorf("short value: %v", err)
	}
}

// TestEmptyKeySets: a key set that would verify nothing never loads; the
// message says how to mend the configuration.
func TestEmptyKeySets(t *testing.T) {
	for name, load := range map[string]func() (*Keys, error){
		"comments only": func() (*Keys, error) {
			return ParseKeys(strings.NewReader("# partner: Zq3xV9tL0pR7mK2wY8bN4cH6 (revoked)\n\n   # another\n"))
		},
		"empty file":           func() (*Keys, error) { return ParseKeys(strings.NewReader("")) },
		"NewKeys()":            func() (*Keys, error) { return NewKeys() },
		"NewConfigKeys()":      func() (*Keys, error) { return NewConfigKeys() },
		"Merge()":              func() (*Keys, error) { return Merge() },
		"Merge(nil, nil)":      func() (*Keys, error) { return Merge(nil, nil) },
		"Merge of empty sets":  func() (*Keys, error) { return Merge(&Keys{}, nil) },
		"Merge of a zero Keys": func() (*Keys, error) { var k Keys; return Merge(&k) },
	} {
		k, err := load()
		if err == nil || k != nil {
			t.Errorf("%s: %v, %v; want an error", name, k, err)
			continue
		}
		if !errors.Is(err, ErrNoKeys) || !strings.Contains(err.Error(), "add a key, or remove the auth block") {
			t.Errorf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), "Zq3x") {
			t.Errorf("%s: the message shows a revoked key: %v", name, err)
		}
	}
}

// TestNewConfigKeys: a configured key is taken whole, ':' included.
func TestNewConfigKeys(t *testing.T) {
	const colon = "partner:7fJ2kL9mQ4rT8vX1zB5nC3dG"
	k, err := NewConfigKeys(colon, " aaaaaaaaaaaaaaaa ")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(colon))
	if id, ok := k.Verify(colon); !ok || id != "sha256:"+hex.EncodeToString(sum[:6]) {
		t.Errorf("Verify(whole) = %q %v", id, ok)
	}
	for _, part := range []string{"7fJ2kL9mQ4rT8vX1zB5nC3dG", "partner"} {
		if id, ok := k.Verify(part); ok {
			t.Errorf("Verify(%q) matched %q: the key was split", part, id)
		}
	}
	if _, ok := k.Verify("aaaaaaaaaaaaaaaa"); !ok {
		t.Error("the second key does not verify")
	}
	// NewKeys, for comparison, splits (the keys file's syntax).
	if split, err := NewKeys(colon); err != nil {
		t.Fatal(err)
	} else if id, ok := split.Verify("7fJ2kL9mQ4rT8vX1zB5nC3dG"); !ok || id != "partner" {
		t.Errorf("NewKeys: %q %v", id, ok)
	}
	for _, tc := range []struct {
		raw  []string
		want string
	}{
		{[]string{"aaaaaaaaaaaaaaaa", ""}, "key 2 is empty"},
		{[]string{"short:key"}, "key 1 is 9 characters long, at least 16"},
		{[]string{"partner: 7fJ2kL9mQ4rT8vX1zB5nC3dG"}, "key 1: a key is visible ASCII characters without spaces (to name a key, put it in a keys_file"},
		{[]string{"7fJ2kL9mQ4rT8vX1zB5nC3d\u00e9"}, "key 1: a key is visible ASCII"},
		{[]string{colon, colon}, "key 2: the same key as entry 1"},
	} {
		_, err := NewConfigKeys(tc.raw...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewConfigKeys(%q) = %v, want %q", tc.raw, err, tc.want)
			continue
		}
		for _, r := range tc.raw {
			if len(r) >= 5 && strings.Contains(err.Error(), r) || strings.Contains(err.Error(), "7fJ2") {
				t.Errorf("error %q contains key material", err)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	a, _ := NewKeys("a: aaaaaaaaaaaaaaaa")
	b, _ := NewKeys("b: bbbbbbbbbbbbbbbb")
	m, err := Merge(a, nil, b)
	if err != nil || m.Len() != 2 {
		t.Fatalf("Merge = %v, %v", m, err)
	}
	if id, ok := m.Verify("bbbbbbbbbbbbbbbb"); !ok || id != "b" {
		t.Errorf("Verify = %q %v", id, ok)
	}
	if _, err := Merge(a, a); err == nil {
		t.Error("a key configured twice was accepted")
	}
	c, _ := NewKeys("a: cccccccccccccccc")
	if _, err := Merge(a, c); err == nil || !strings.Contains(err.Error(), `"a" is used twice`) {
		t.Errorf("name used twice: %v", err)
	}
}

func TestVerifyNil(t *testing.T) {
	var k *Keys
	if _, ok := k.Verify("anything"); ok || k.Len() != 0 {
		t.Error("nil Keys verified a credential")
	}
}

func TestVerifyAllocs(t *testing.T) {
	k, _ := NewKeys("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb")
	if n := testing.AllocsPerRun(100, func() { k.Verify("bbbbbbbbbbbbbbbb") }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

// BenchmarkVerify shows the constant-time property: matching the first
// key, the last key or none costs the same (compare the three ns/op).
func BenchmarkVerify(b *testing.B) {
	raw := make([]string, 32)
	for i := range raw {
		raw[i] = fmt.Sprintf("key-%02d-%s", i, strings.Repeat("x", 24))
	}
	k, err := NewKeys(raw...)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, cred string }{
		{"first", raw[0]},
		{"last", raw[len(raw)-1]},
		{"none", "key-99-" + strings.Repeat("x", 24)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.Verify(bc.cred)
			}
		})
	}
}
