package handoff

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The browser solver (assets/solver.js) runs its worker code under
// Node.js (whose crypto.subtle is WebCrypto) and must find the same
// nonces as Solve: the vectors of docs/agent-handoff.md and a fresh
// challenge of the form the server issues.
func TestSolverJSAgreesWithGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node not found but CI is set: the JS solver must be checked in CI (.ci/run installs Node.js): %v", err)
		}
		t.Skipf("node not found (install Node.js >= 20 to run this test; with CI set it fails instead): %v", err)
	}
	dir := t.TempDir()
	solver := filepath.Join(dir, "solver.js")
	if err := os.WriteFile(solver, SolverJS(), 0o600); err != nil {
		t.Fatal(err)
	}
	driver := filepath.Join(dir, "driver.js")
	// The worker half of solver.js runs when there is no document: self
	// is the global object, messages go through postMessage/onmessage.
	if err := os.WriteFile(driver, []byte(`
globalThis.self = globalThis;
const waiting = [];
globalThis.postMessage = (m) => { if (m.tried === undefined) waiting.shift()(m); };
require(process.argv[2]);
const cases = JSON.parse(process.argv[3]);
(async () => {
  for (const c of cases) {
    const m = await new Promise((resolve) => { waiting.push(resolve); self.onmessage({ data: c }); });
    console.log(JSON.stringify(m));
  }
})();
`), 0o600); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		Challenge  string `json:"challenge"`
		Difficulty int    `json:"difficulty"`
		Start      uint64 `json:"start"`
	}
	cases := []tc{
		{vectorChallenge, 8, 0}, {vectorChallenge, 12, 0}, {vectorChallenge, 16, 0},
		{vectorChallenge, 20, 3777000}, // the 20-bit vector without hashing 3.7 million nonces in Node
		{vectorChallenge, 7, 0}, {vectorChallenge, 10, 0},
		{vectorChallenge, 8, 326}, // the next nonce after the vector's
		{newChallenge(t), 12, 0},
		{strings.Repeat("0", 64), 0, 0},
	}
	arg, _ := json.Marshal(cases)
	cmd := exec.Command(node, driver, solver, string(arg))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	i := 0
	for sc.Scan() {
		var m struct {
			Nonce string `json:"nonce"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || i >= len(cases) {
			t.Fatalf("unexpected output %q", sc.Text())
		}
		c := cases[i]
		want, err := solve(context.Background(), c.Challenge, c.Difficulty, c.Start, 2)
		if err != nil {
			t.Fatal(err)
		}
		if m.Error != "" || m.Nonce != want {
			t.Errorf("%s… at %d bits from %d: JS %q (error %q), Go %s", c.Challenge[:8], c.Difficulty, c.Start, m.Nonce, m.Error, want)
		}
		i++
	}
	if i != len(cases) {
		t.Fatalf("node answered %d of %d cases:\n%s", i, len(cases), out)
	}
}
