package manifest

import "testing"

func TestRegisteredResponseType(t *testing.T) {
	for typ, want := range map[string]bool{
		"text/answer":               true,
		"application/action-result": true,
		"media/image":               true,
		"x-shopify/cart":            true,
		"application/pdf":           false, // the schema's pattern admits it; the registry does not
		"text/html":                 false,
		"media/x-video":             false,
		"":                          false,
	} {
		if got := RegisteredResponseType(typ); got != want {
			t.Errorf("RegisteredResponseType(%q) = %v, want %v", typ, got, want)
		}
	}
}
