package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MinKeyLength is the shortest key accepted: shorter keys are guessable
// within a rate limit's patience.
const MinKeyLength = 16

// Keys is a set of accepted credentials. Only SHA-256 hashes of the keys
// are kept, so a memory dump or a debug print does not reveal them.
// A nil or empty *Keys verifies nothing. Keys are safe for concurrent use.
type Keys struct {
	hashes [][sha256.Size]byte
	ids    []string
}

// ParseKeys reads a keys file. Format, one entry per line:
//
//	# a comment: a line whose first non-space character is #
//	Zq3xV9tL0pR7mK2wY8bN4cH6
//	partner-portal: 7fJ2kL9mQ4rT8vX1zB5nC3dG
//
// An entry is a key, or a name, a colon and a key (spaces around the
// colon are optional). A key is at least MinKeyLength visible ASCII
// characters, without spaces (what a header carries unambiguously), ':'
// (the separator) or a leading '#'. A name (letters, digits, '.', '_',
// '-') becomes the key's id in rate limits and logs; without one the id is
// derived from the key's hash. Blank lines are ignored. Anything else, a
// repeated key or a repeated name is an error naming the line; the
// message never contains the key.
func ParseKeys(r io.Reader) (*Keys, error) {
	k := &Keys{}
	seen := map[string]int{} // hash or name → line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		if err := k.add(text, seen, line); err != nil {
			return nil, fmt.Errorf("keys file line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading keys file: %w", err)
	}
	if k.Len() == 0 {
		return nil, noKeysError("no keys: every line of the keys file is blank or a comment (all keys commented out or revoked?); " + emptyFix)
	}
	return k, nil
}

// noKeysError is ErrNoKeys with a message of its own.
type noKeysError string

func (e noKeysError) Error() string        { return string(e) }
func (e noKeysError) Is(target error) bool { return target == ErrNoKeys }

// emptyFix is how to mend an empty key set. An empty set must never load:
// it would turn verification off, and any credential would pass.
const emptyFix = "add a key, or remove the auth block to pass credentials to the concierge unverified"

// ErrNoKeys is returned (wrapped) for an empty key set.
var ErrNoKeys = errors.New("no keys: " + emptyFix)

// NewKeys builds Keys from values each a key or "name: key" as in
// ParseKeys. An empty value is an error: it usually means an unset
// environment variable, and silently dropping it would lock clients out
// (or, with no other key, disable verification). No values at all is
// ErrNoKeys. For keys from the configuration, which may hold ':', use
// NewConfigKeys.
func NewKeys(raw ...string) (*Keys, error) {
	if len(raw) == 0 {
		return nil, ErrNoKeys
	}
	k := &Keys{}
	seen := map[string]int{}
	for i, v := range raw {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("key %d is empty (is its environment variable set?)", i+1)
		}
		if err := k.add(v, seen, i+1); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	return k, nil
}

// NewConfigKeys builds Keys from values configured one by one (`key
// {env.X}` in the Caddyfile, placeholders already replaced). Each value is
// a key, taken whole: a ':' in it is part of the key, never a name
// separator (only a keys file names keys, see ParseKeys), so a secret that
// happens to hold a ':' is not cut into a name and a shorter key. A key is
// at least MinKeyLength visible ASCII characters without spaces; its id is
// derived from its hash. An empty value is an error (an unset environment
// variable), and no values at all is ErrNoKeys. Messages never include a
// key.
func NewConfigKeys(raw ...string) (*Keys, error) {
	if len(raw) == 0 {
		return nil, ErrNoKeys
	}
	k := &Keys{}
	seen := map[string]int{}
	for i, v := range raw {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			return nil, fmt.Errorf("key %d is empty (is its environment variable set?)", i+1)
		case !isToken(v):
			return nil, fmt.Errorf("key %d: a key is visible ASCII characters without spaces (to name a key, put it in a keys_file as \"name: key\")", i+1)
		case len(v) < MinKeyLength:
			return nil, fmt.Errorf("key %d is %d characters long, at least %d are required", i+1, len(v), MinKeyLength)
		}
		if err := k.addKey("", v, seen, i+1); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	return k, nil
}

// Merge returns the keys of all sets (nil sets are skipped). A key or name
// present in two sets is an error, and so is a result without keys
// (ErrNoKeys).
func Merge(sets ...*Keys) (*Keys, error) {
	out := &Keys{}
	seenHash := map[[sha256.Size]byte]bool{}
	seenID := map[string]bool{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		for i, h := range s.hashes {
			if seenHash[h] {
				return nil, fmt.Errorf("key %s is configured twice", s.ids[i])
			}
			if seenID[s.ids[i]] {
				return nil, fmt.Errorf("key name %q is used twice", s.ids[i])
			}
			seenHash[h], seenID[s.ids[i]] = true, true
			out.hashes = append(out.hashes, h)
			out.ids = append(out.ids, s.ids[i])
		}
	}
	if out.Len() == 0 {
		return nil, ErrNoKeys
	}
	return out, nil
}

// add parses one entry; seen maps hashes and names to the entry number
// where they first appeared.
func (k *Keys) add(entry string, seen map[string]int, n int) error {
	name, key := "", entry
	if i := strings.IndexByte(entry, ':'); i >= 0 {
		name, key = strings.TrimSpace(entry[:i]), strings.TrimSpace(entry[i+1:])
		if err := checkName(name); err != nil {
			return err
		}
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return k.addKey(name, key, seen, n)
}

// addKey adds a checked key under name ("": derived from its hash).
func (k *Keys) addKey(name, key string, seen map[string]int, n int) error {
	sum := sha256.Sum256([]byte(key))
	if first, dup := seen["h:"+string(sum[:])]; dup {
		return fmt.Errorf("the same key as entry %d", first)
	}
	seen["h:"+string(sum[:])] = n
	id := name
	if id == "" {
		id = "sha256:" + hex.EncodeToString(sum[:6])
	} else if first, dup := seen["n:"+name]; dup {
		// Not quoted: the "name" may be the start of a key that holds ':'.
		return fmt.Errorf("the key name is already used by entry %d; give each key its own name", first)
	}
	seen["n:"+id] = n
	k.hashes = append(k.hashes, sum)
	k.ids = append(k.ids, id)
	return nil
}

// checkName never puts the name in its message: what stands before a ':'
// may be the first part of a key that holds one, not a name.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New(`key name must be 1 to 64 characters (the entry is "name: key"; a key itself may not hold ':')`)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errors.New(`the text before ':' is not a key name: a name may hold only letters, digits, '.', '_' and '-' (the entry is "name: key"; a key itself may not hold ':')`)
		}
	}
	return nil
}

// checkKey never puts the key in its message: errors end up in logs.
func checkKey(key string) error {
	if !isToken(key) || strings.ContainsRune(key, ':') || key[0] == '#' {
		return fmt.Errorf(`expected "key" or "name: key"; a key is visible ASCII characters other than ':', without spaces, not starting with '#'`)
	}
	if len(key) < MinKeyLength {
		return fmt.Errorf("key is %d characters long, at least %d are required", len(key), MinKeyLength)
	}
	return nil
}

// Verify reports whether credential is one of the keys and returns the
// key's id: its configured name, or "sha256:" and the first 12 hex digits
// of its SHA-256 (not secret for keys of enough entropy; name keys to
// avoid even that). The id is stable across reloads, so it can key rate
// limits.
//
// Every key is compared, in constant time, whatever matches: the time
// taken depends only on the number of keys, not on which (if any) matched
// or how much of a key the credential shares.
func (k *Keys) Verify(credential string) (keyID string, ok bool) {
	if k.Len() == 0 {
		return "", false
	}
	sum := sha256.Sum256([]byte(credential))
	found, at := 0, 0
	for i := range k.hashes {
		eq := subtle.ConstantTimeCompare(sum[:], k.hashes[i][:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found == 0 {
		return "", false
	}
	return k.ids[at], true
}

// Len is the number of keys; 0 for nil.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.hashes)
}

// IDs lists the keys' ids in configuration order, for logs at startup.
func (k *Keys) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.ids...)
}

// String never prints keys or hashes.
func (k *Keys) String() string {
	return fmt.Sprintf("auth.Keys(%d keys)", k.Len())
}
