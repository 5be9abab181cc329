//go:build !race

package caddyproc

// Race reports whether this test binary (and so the Caddy it builds) runs
// under the race detector.
const Race = false
