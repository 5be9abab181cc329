package webbotauth

import (
	"net/http"
	"strings"

	"github.com/dunglas/httpsfv"
)

// Bounds on untrusted input, far above what a real signer sends.
const (
	maxFieldBytes  = 8 << 10 // each of Signature-Input, Signature, Signature-Agent and any covered field
	maxComponents  = 32      // covered components of one signature
	maxWBASigs     = 4       // web-bot-auth signatures tried per request
	maxAgentURLLen = 1024
)

// WebBotAuthTag is the tag parameter that marks a Web Bot Auth signature.
const WebBotAuthTag = "web-bot-auth"

// sigInput is one member of Signature-Input (RFC 9421 §4.1).
type sigInput struct {
	label      string
	components []httpsfv.Item
	// params is the serialized inner list with its parameters: the value
	// of @signature-params (RFC 9421 §2.3).
	params  string
	created int64 // 0: absent
	expires int64 // 0: absent
	keyid   string
	alg     string
	tag     string
	// bad is why the member is malformed: that signature's result alone,
	// the request's other signatures are still tried.
	bad *failure
}

// fieldValues returns the field lines of h[name] (name canonical), and
// whether their total size is within maxFieldBytes.
func fieldValues(h http.Header, name string) ([]string, bool) {
	v := h[name]
	n := 0
	for _, s := range v {
		n += len(s)
	}
	return v, n <= maxFieldBytes
}

// parseSignatureInput parses a Signature-Input field and returns its
// web-bot-auth members in field order (at most maxWBASigs). Members with
// another tag, or none, are someone else's signatures and are skipped;
// a malformed web-bot-auth member is kept with its failure (bad), so that
// one signer's mistake, or a client's junk member, does not spoil another
// signer's signature.
func parseSignatureInput(values []string) ([]sigInput, *failure) {
	d, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return nil, invalid("Signature-Input is not a structured-field dictionary")
	}
	var out []sigInput
	for _, label := range d.Names() {
		m, _ := d.Get(label)
		il, ok := m.(httpsfv.InnerList)
		if !ok {
			continue // not a signature input at all: not ours to judge
		}
		if tag, _ := il.Params.Get("tag"); tag != WebBotAuthTag {
			continue
		}
		if len(out) == maxWBASigs {
			break
		}
		in, f := parseMember(label, il)
		in.bad = f
		out = append(out, in)
	}
	return out, nil
}

func parseMember(label string, il httpsfv.InnerList) (sigInput, *failure) {
	in := sigInput{label: label, tag: WebBotAuthTag}
	if len(il.Items) > maxComponents {
		return in, invalid("signature " + label + " covers too many components")
	}
	for _, it := range il.Items {
		if _, ok := it.Value.(string); !ok {
			return in, invalid("signature " + label + ": a covered component is not a string")
		}
	}
	in.components = il.Items
	for _, name := range il.Params.Names() {
		v, _ := il.Params.Get(name)
		switch name {
		case "created", "expires":
			n, ok := v.(int64)
			if !ok || n <= 0 {
				return in, invalid("signature " + label + ": " + name + " is not a positive integer")
			}
			if name == "created" {
				in.created = n
			} else {
				in.expires = n
			}
		case "keyid", "alg", "nonce":
			s, ok := v.(string)
			if !ok {
				return in, invalid("signature " + label + ": " + name + " is not a string")
			}
			switch name {
			case "keyid":
				in.keyid = s
			case "alg":
				in.alg = s
			}
		}
		// Other parameters are covered by the signature through
		// @signature-params and otherwise ignored (RFC 9421 §2.3).
	}
	s, err := httpsfv.Marshal(il)
	if err != nil {
		return in, invalid("signature " + label + ": parameters cannot be serialized")
	}
	in.params = s
	return in, nil
}

// parseSignature returns the signature bytes labelled label in a
// Signature field (RFC 9421 §4.2).
func parseSignature(values []string, label string) ([]byte, *failure) {
	d, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return nil, invalid("Signature is not a structured-field dictionary")
	}
	m, ok := d.Get(label)
	if !ok {
		return nil, invalid("Signature has no member " + label)
	}
	it, ok := m.(httpsfv.Item)
	if !ok {
		return nil, invalid("Signature member " + label + " is not a byte sequence")
	}
	b, ok := it.Value.([]byte)
	if !ok {
		return nil, invalid("Signature member " + label + " is not a byte sequence")
	}
	return b, nil
}

// signatureAgent is a parsed Signature-Agent field: the dictionary of
// draft-ietf-webbotauth-httpsig-protocol (architecture-04 onwards), or
// the bare sf-string earlier drafts used and agents still send.
type signatureAgent struct {
	legacy string // the bare string form's URL; "" for a dictionary
	dict   *httpsfv.Dictionary
}

// parseSignatureAgent parses the field. The two forms are told apart by
// their first byte, as the draft says: a String Item starts with a DQUOTE,
// a dictionary key never does.
func parseSignatureAgent(values []string) (signatureAgent, *failure) {
	var sa signatureAgent
	first := ""
	for _, v := range values {
		if t := strings.TrimLeft(v, " \t"); t != "" {
			first = t
			break
		}
	}
	if first == "" {
		return sa, unverified("no Signature-Agent")
	}
	if first[0] == '"' {
		it, err := httpsfv.UnmarshalItem(values)
		if err != nil {
			return sa, invalid("Signature-Agent is neither a dictionary nor a string")
		}
		s, ok := it.Value.(string)
		if !ok || s == "" {
			return sa, invalid("Signature-Agent is not a string")
		}
		sa.legacy = s
		return sa, nil
	}
	d, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return sa, invalid("Signature-Agent is neither a dictionary nor a string")
	}
	sa.dict = d
	return sa, nil
}

// member returns the URL of dictionary member key. A member that is not
// a plain string, or that carries parameters (which the draft says a
// verifier must ignore), yields "".
func (sa *signatureAgent) member(key string) string {
	if sa.dict == nil {
		return ""
	}
	m, ok := sa.dict.Get(key)
	if !ok {
		return ""
	}
	it, ok := m.(httpsfv.Item)
	if !ok || (it.Params != nil && len(it.Params.Names()) > 0) {
		return ""
	}
	s, _ := it.Value.(string)
	return s
}

// agentURL picks the Signature-Agent URL the signature in covers. Only a
// member the signature covers may name its signer (draft § Multiple
// Signatures). With the dictionary form that is the member keyed to the
// signature's label when covered, else the only covered member; with the
// bare string form, the whole covered field.
func (sa *signatureAgent) agentURL(in *sigInput) (string, *failure) {
	var keys []string
	whole := false
	for _, it := range in.components {
		if it.Value.(string) != "signature-agent" {
			continue
		}
		if k, ok := it.Params.Get("key"); ok {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
			continue
		}
		whole = true
	}
	if sa.legacy != "" {
		if !whole {
			return "", unverified("the signature does not cover Signature-Agent")
		}
		return sa.legacy, nil
	}
	for _, k := range keys {
		if k == in.label {
			if u := sa.member(k); u != "" {
				return u, nil
			}
		}
	}
	switch {
	case len(keys) == 1:
		if u := sa.member(keys[0]); u != "" {
			return u, nil
		}
		return "", unverified("Signature-Agent member " + keys[0] + " is missing, not a string or has parameters")
	case len(keys) > 1:
		return "", unverified("the signature covers several Signature-Agent members, none keyed to its label")
	case whole && len(sa.dict.Names()) == 1:
		// The whole one-member dictionary is signed: unambiguous.
		if u := sa.member(sa.dict.Names()[0]); u != "" {
			return u, nil
		}
	}
	return "", unverified("the signature does not cover a Signature-Agent member")
}
