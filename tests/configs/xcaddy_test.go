package configs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyShOnAFreshClone runs README.md's build command, ./xcaddy.sh,
// as a new user would: in a fresh clone, with an empty module cache, no
// xcaddy installed, no Go configuration of their own, and the module proxy
// this machine has. It once failed there (issue 17): xcaddy's own module
// has no go.sum, and with GOPROXY=off the go command asked sum.golang.org
// directly, which networks that only reach a module proxy cannot.
//
// It clones HEAD: what is committed is what CI and new users get.
//
// Modules the machine already has are served from its module cache (a
// file:// proxy listed before the machine's GOPROXY) into the test's empty
// one, and the build cache is shared. Measured on a loaded 2-core machine
// with a warm build cache: ./xcaddy.sh takes 65-75 s (most of it filling the
// empty module cache, about 1.2 GB), removing that cache about 20 s more; a
// cold build cache adds a full xcaddy build (about 2.5 minutes).
//
// Beyond "it built": every module linked into the binary must carry the
// hash this repository's go.sum commits, and the build must not have asked
// the checksum database about Caddy (it is in go.sum), so a regression is
// caught even on a machine that can reach sum.golang.org.
func TestXcaddyShOnAFreshClone(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	clone := filepath.Join(tmp, "fresh")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	goenv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	modcache := filepath.Join(tmp, "gopath", "pkg", "mod")
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "XCADDY_"), strings.HasPrefix(name, "CGO_"),
			name == "PATH", name == "HOME", strings.HasPrefix(name, "XDG_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+filepath.Join(tmp, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), // no go env file of ours
		"GOPATH="+filepath.Join(tmp, "gopath"),          // empty module cache, no xcaddy in GOPATH/bin
		"GOCACHE="+goenv("GOCACHE"),                     // the build cache is only a cache
		"GOTOOLCHAIN="+goenv("GOTOOLCHAIN"),
		"GOPROXY=file://"+filepath.Join(goenv("GOMODCACHE"), "cache", "download")+","+goenv("GOPROXY"),
		"GOSUMDB="+goenv("GOSUMDB"),
		"PATH="+filepath.Dir(goBin)+":/usr/local/bin:/usr/bin:/bin",
	)
	// The module cache is read-only; go clean removes it (before TempDir's
	// own cleanup, which runs after this one).
	t.Cleanup(func() {
		c := exec.Command("go", "clean", "-modcache")
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			t.Logf("go clean -modcache: %v\n%s", err, out)
		}
	})

	start := time.Now()
	cmd := exec.Command("./xcaddy.sh")
	cmd.Dir = clone
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("./xcaddy.sh on a fresh clone: %v\n%s", err, tail(string(out), 60))
	}
	t.Logf("./xcaddy.sh on a fresh clone with an empty module cache took %s", time.Since(start).Round(time.Second))

	bin := filepath.Join(clone, "caddy")
	mods, err := exec.Command(bin, "list-modules").Output()
	if err != nil || !strings.Contains(string(mods), "\nhttp.handlers.ahp\n") {
		t.Fatalf("the built caddy lacks http.handlers.ahp (%v)", err)
	}

	// Every module in the binary has the hash go.sum commits.
	sums := map[string]bool{}
	for _, line := range strings.Split(string(readFile(t, "go.sum")), "\n") {
		sums[line] = true
	}
	info := exec.Command("go", "version", "-m", bin)
	info.Env = env
	infoOut, err := info.Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	checked, replaced := 0, ""
	sc := bufio.NewScanner(strings.NewReader(string(infoOut)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "dep":
			if !sums[f[1]+" "+f[2]+" "+f[3]] {
				t.Errorf("the binary links %s %s %s, which go.sum does not commit", f[1], f[2], f[3])
			}
			checked++
		case len(f) >= 2 && f[0] == "=>":
			replaced = f[1]
		}
	}
	if checked < 50 {
		t.Errorf("only %d modules with hashes in the binary:\n%s", checked, infoOut)
	}
	if replaced != clone {
		t.Errorf("the plugin was not built from the clone (replacement %q, want %q)", replaced, clone)
	}

	// Caddy is in go.sum: the checksum database must not have been asked.
	lookup := filepath.Join(modcache, "cache", "download", "sumdb", "sum.golang.org", "lookup",
		"github.com", "caddyserver", "caddy", "v2@v"+caddyVersion(t))
	if _, err := os.Stat(lookup); err == nil {
		t.Errorf("the build asked the checksum database about Caddy (%s), though go.sum has its hash", lookup)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
