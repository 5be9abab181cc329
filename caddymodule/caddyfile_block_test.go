package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// An option given both its arguments and a block on one line is refused
// with what to write: the arguments end the option, and the block was
// reported as an unknown option "{".
func TestOptionArgumentsThenBlockRefused(t *testing.T) {
	for _, in := range []string{
		"ahp {\n\trate_limit off {\n\t\tstatic 5/minute\n\t}\n}",
		"ahp {\n\tnotice off {\n\t\ttext hi\n\t}\n}",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), "a block after an option's arguments") {
			t.Errorf("%q: got %v", in, err)
		}
	}
}
