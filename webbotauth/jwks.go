package webbotauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxKeys is the most keys a directory or a pinned JWKS may list. The
// draft asks verifiers to bound the key count (§ SSRF): a directory with
// more is refused as a whole rather than truncated, so that which keys
// count never depends on their order.
const MaxKeys = 64

// rfc9421TestKey is the x coordinate of the Ed25519 example key of
// RFC 9421 Appendix B.1.4 ("test-key-ed25519"). Its private half is
// public, so the draft (§ Test and Demonstration Keys) asks verifiers to
// refuse it in directories and configuration.
const rfc9421TestKey = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"

// KeySet is the Ed25519 keys of one agent, indexed by their JWK SHA-256
// thumbprint (RFC 7638), which is what a signature's keyid names.
// A KeySet is immutable once built and safe for concurrent use.
type KeySet struct {
	keys map[string]jwkKey
}

type jwkKey struct {
	pub ed25519.PublicKey
	// nbf and exp bound the key's use when the JWK gives them (0: unbounded).
	nbf, exp int64
}

// Len reports how many usable keys the set holds.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}

// Thumbprints lists the keys' thumbprints (for logs and tests).
func (ks *KeySet) Thumbprints() []string {
	if ks == nil {
		return nil
	}
	out := make([]string, 0, len(ks.keys))
	for t := range ks.keys {
		out = append(out, t)
	}
	return out
}

// lookup returns the key with thumbprint keyid usable at now.
func (ks *KeySet) lookup(keyid string, now time.Time) (ed25519.PublicKey, string) {
	if ks == nil {
		return nil, "unknown keyid"
	}
	k, ok := ks.keys[keyid]
	if !ok {
		return nil, "unknown keyid"
	}
	s := now.Unix()
	if k.nbf != 0 && s < k.nbf {
		return nil, "key not valid yet (nbf)"
	}
	if k.exp != 0 && s >= k.exp {
		return nil, "key expired (exp)"
	}
	return k.pub, ""
}

// rawJWK is the part of a JWK this package reads. Members it does not
// know are ignored, as RFC 7517 §4 asks.
type rawJWK struct {
	Kty string           `json:"kty"`
	Crv string           `json:"crv"`
	X   string           `json:"x"`
	D   *json.RawMessage `json:"d"`
	Use string           `json:"use"`
	Alg string           `json:"alg"`
	Nbf *json.Number     `json:"nbf"`
	Exp *json.Number     `json:"exp"`
}

// ParseJWKS reads a JSON Web Key Set ({"keys":[...]}) or, for pinned
// keys, a single JWK. It keeps the Ed25519 public keys (kty OKP, crv
// Ed25519) meant for signing and skips others (RSA, EC, X25519, keys
// whose use or alg say they are not for Ed25519 signatures), since a
// directory may serve other consumers too. It fails on malformed JSON,
// on more than MaxKeys keys, on a malformed Ed25519 key, on a key that
// carries its private part (d), and on a set with no usable key.
// allowTestKeys admits the RFC 9421 example key (for tests only).
func ParseJWKS(data []byte, allowTestKeys bool) (*KeySet, error) {
	data = bytes.TrimSpace(data)
	var raws []rawJWK
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if set.Keys == nil {
		// A single JWK (pinned keys may be given so).
		var k rawJWK
		if err := json.Unmarshal(data, &k); err != nil || k.Kty == "" {
			return nil, errors.New(`neither a JWK Set (no "keys" array) nor a JWK (no "kty")`)
		}
		raws = append(raws, k)
	} else {
		if len(*set.Keys) > MaxKeys {
			return nil, fmt.Errorf("%d keys, more than the %d allowed", len(*set.Keys), MaxKeys)
		}
		raws = make([]rawJWK, len(*set.Keys))
		for i, m := range *set.Keys {
			if err := json.Unmarshal(m, &raws[i]); err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
		}
	}
	ks := &KeySet{keys: make(map[string]jwkKey, len(raws))}
	for i, k := range raws {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Alg {
		case "", "EdDSA", "Ed25519", "ed25519":
		default:
			continue
		}
		if k.D != nil {
			return nil, fmt.Errorf("key %d carries its private part (d): refusing the set", i)
		}
		if k.X == rfc9421TestKey && !allowTestKeys {
			return nil, fmt.Errorf("key %d is the RFC 9421 example key, whose private half is public", i)
		}
		pub, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d: x is not a base64url 32-byte Ed25519 public key", i)
		}
		jk := jwkKey{pub: ed25519.PublicKey(pub)}
		if jk.nbf, err = jwkTime(k.Nbf); err != nil {
			return nil, fmt.Errorf("key %d: nbf: %w", i, err)
		}
		if jk.exp, err = jwkTime(k.Exp); err != nil {
			return nil, fmt.Errorf("key %d: exp: %w", i, err)
		}
		ks.keys[Thumbprint(jk.pub)] = jk
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("no Ed25519 signing key (kty OKP, crv Ed25519)")
	}
	return ks, nil
}

func jwkTime(n *json.Number) (int64, error) {
	if n == nil {
		return 0, nil
	}
	v, err := n.Int64()
	if err != nil || v <= 0 {
		return 0, errors.New("not a positive integer NumericDate")
	}
	return v, nil
}

// Thumbprint is the base64url JWK SHA-256 thumbprint (RFC 7638 §3, with
// the OKP members of RFC 8037 Appendix A.3) of an Ed25519 public key: the
// keyid a Web Bot Auth signature names.
func Thumbprint(pub ed25519.PublicKey) string {
	// The required members in lexicographic order, no whitespace. The
	// base64url alphabet needs no JSON escaping.
	var buf [64 + 43]byte
	b := append(buf[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, pub)
	b = append(b, `"}`...)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// keysVersion starts an encoded key set (encodeKeys); another layout
// would take another version.
const keysVersion = 1

// encodedKeySize is one key in an encoded key set: the public key, nbf
// and exp (big-endian, 0 for none).
const encodedKeySize = ed25519.PublicKeySize + 8 + 8

// encodeKeys is ks as the shared cache holds it: the version byte, then
// each key's public key, nbf and exp; at most 1 + 64*48 bytes, whatever
// the directory it came from looked like.
func encodeKeys(ks *KeySet) []byte {
	b := make([]byte, 1, 1+len(ks.keys)*encodedKeySize)
	b[0] = keysVersion
	for _, k := range ks.keys {
		b = append(b, k.pub...)
		b = binary.BigEndian.AppendUint64(b, uint64(k.nbf))
		b = binary.BigEndian.AppendUint64(b, uint64(k.exp))
	}
	return b
}

// decodeKeys reads encodeKeys' output, with ParseJWKS's rules: 1 to
// MaxKeys keys, no RFC 9421 example key unless allowTestKeys.
func decodeKeys(b []byte, allowTestKeys bool) (*KeySet, error) {
	if len(b) < 1 || b[0] != keysVersion || (len(b)-1)%encodedKeySize != 0 {
		return nil, errors.New("not an encoded key set")
	}
	n := (len(b) - 1) / encodedKeySize
	if n == 0 || n > MaxKeys {
		return nil, fmt.Errorf("%d keys", n)
	}
	ks := &KeySet{keys: make(map[string]jwkKey, n)}
	for b = b[1:]; len(b) > 0; b = b[encodedKeySize:] {
		pub := ed25519.PublicKey(append([]byte(nil), b[:ed25519.PublicKeySize]...))
		if !allowTestKeys && base64.RawURLEncoding.EncodeToString(pub) == rfc9421TestKey {
			return nil, errors.New("the RFC 9421 example key")
		}
		k := jwkKey{pub: pub,
			nbf: int64(binary.BigEndian.Uint64(b[ed25519.PublicKeySize:])),
			exp: int64(binary.BigEndian.Uint64(b[ed25519.PublicKeySize+8:]))}
		if k.nbf < 0 || k.exp < 0 {
			return nil, errors.New("negative nbf or exp")
		}
		ks.keys[Thumbprint(pub)] = k
	}
	return ks, nil
}
