package configs

import (
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
)

// caddyVersion is the Caddy version go.mod pins, without the "v".
func caddyVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*github\.com/caddyserver/caddy/v2 v(\S+)`).FindSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod does not require github.com/caddyserver/caddy/v2")
	}
	return string(m[1])
}

// dockerInstructions parses a Dockerfile into instructions (keyword and
// arguments), joining continuation lines and dropping comments.
func dockerInstructions(t *testing.T, rel string) [][2]string {
	t.Helper()
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, rel)), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		kw, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// TestDockerfile: the image is built from the Caddy version go.mod pins, on
// the official builder pattern, with ./xcaddy.sh (the command README.md
// gives and TestXcaddyShOnAFreshClone runs), and runs as a non-root user
// with a health check. No Docker engine runs here; this is what can be
// checked without one.
func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t, "Dockerfile")
	want := caddyVersion(t)
	var froms, runs, users, healthchecks, copies []string
	for _, in := range ins {
		switch in[0] {
		case "ARG":
			if name, v, ok := strings.Cut(in[1], "="); ok && name == "CADDY_VERSION" && v != want {
				t.Errorf("Dockerfile: ARG CADDY_VERSION=%s, but go.mod pins Caddy v%s", v, want)
			}
		case "FROM":
			froms = append(froms, in[1])
		case "RUN":
			runs = append(runs, in[1])
		case "USER":
			users = append(users, in[1])
		case "HEALTHCHECK":
			healthchecks = append(healthchecks, in[1])
		case "COPY":
			copies = append(copies, in[1])
		}
	}
	if len(ins) == 0 || ins[0][1] != "CADDY_VERSION="+want {
		t.Errorf("Dockerfile: the first instruction must be ARG CADDY_VERSION=%s, got %v", want, ins[0])
	}
	if len(froms) != 2 || froms[0] != "caddy:${CADDY_VERSION}-builder AS builder" || froms[1] != "caddy:${CADDY_VERSION}" {
		t.Errorf("Dockerfile: want FROM caddy:${CADDY_VERSION}-builder AS builder, then FROM caddy:${CADDY_VERSION}; got %q", froms)
	}
	// The one build command is the README's.
	var builds []string
	for _, r := range runs {
		if strings.Contains(r, "xcaddy") || strings.Contains(r, "go build") {
			builds = append(builds, r)
		}
	}
	// (After its --mount options, which only keep caches between builds.)
	if len(builds) != 1 || !strings.HasSuffix(builds[0], " ./xcaddy.sh --output /usr/bin/caddy") && builds[0] != "./xcaddy.sh --output /usr/bin/caddy" {
		t.Errorf("Dockerfile: the binary must be built by exactly `RUN ./xcaddy.sh --output /usr/bin/caddy`; build steps: %q", builds)
	}
	for _, b := range builds {
		for _, opt := range strings.Fields(strings.TrimSuffix(b, "./xcaddy.sh --output /usr/bin/caddy")) {
			if !strings.HasPrefix(opt, "--mount=type=cache,") {
				t.Errorf("Dockerfile: the build step has %q before ./xcaddy.sh; only cache mounts may change nothing but speed", opt)
			}
		}
	}
	if !contains(copies, "--from=builder /usr/bin/caddy /usr/bin/caddy") {
		t.Errorf("Dockerfile: the runtime stage must copy the built binary over the image's: COPY --from=builder /usr/bin/caddy /usr/bin/caddy; copies: %q", copies)
	}
	if len(users) == 0 {
		t.Error("Dockerfile: no USER: the image would run as root")
	} else if u := users[len(users)-1]; u == "root" || u == "0" || strings.HasPrefix(u, "root:") || strings.HasPrefix(u, "0:") {
		t.Errorf("Dockerfile: runs as %s", u)
	}
	if len(healthchecks) != 1 || !strings.Contains(healthchecks[0], "http://127.0.0.1:2019/") {
		t.Errorf("Dockerfile: want one HEALTHCHECK against the admin API on 127.0.0.1:2019, got %q", healthchecks)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDockerignoreKeepsTheBuildInputs: every file the image's build reads
// (go.mod, go.sum, xcaddy.sh, the Go files and embedded files of every
// package of this module the plugin imports) is sent to the Docker build.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	inputs := []string{"go.mod", "go.sum", "xcaddy.sh"}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./cmd/caddy")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		inputs = append(inputs, strings.TrimPrefix(f, root+"/"))
	}
	if len(inputs) < 20 {
		t.Fatalf("only %d build inputs found: %v", len(inputs), inputs)
	}
	for _, f := range inputs {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore excludes %s, which the image's build reads", f)
		}
	}
	// And the matcher itself: what the file means to exclude, it excludes.
	for _, f := range []string{".git/config", "docs/deployment.md", "examples/compose/compose.yaml", "integrations/mcp/testdata/ts-client/node_modules/x/index.js", "caddy", "bench/out/profile/Caddyfile"} {
		if !dockerignored(patterns, f) {
			t.Errorf(".dockerignore does not exclude %s", f)
		}
	}
}

// dockerignored applies .dockerignore patterns as Docker does: in order,
// the last match wins, "!" re-includes, a pattern matching a directory
// excludes what is under it, "**" matches any number of directories.
func dockerignored(patterns []string, file string) bool {
	ignored := false
	for _, p := range patterns {
		negate := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		p = strings.TrimSuffix(p, "/")
		for prefix := file; prefix != "." && prefix != "/" && prefix != ""; prefix = path.Dir(prefix) {
			if globMatch(strings.Split(p, "/"), strings.Split(prefix, "/")) {
				ignored = !negate
				break
			}
		}
	}
	return ignored
}

func globMatch(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if globMatch(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], name[0])
	return err == nil && ok && globMatch(pat[1:], name[1:])
}
