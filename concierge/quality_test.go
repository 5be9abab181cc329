package concierge

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoQuestions holds retrieval quality on the demo site to the table
// in testdata/questions.tsv: each question's answer must cite the listed
// page first, as its direct source, and quote it; questions the site does
// not answer must get the honest "nothing found" answer with no source.
func TestDemoQuestions(t *testing.T) {
	c, _ := demoConcierge(t)
	n := 0
	for _, fields := range readTSV(t, "questions.tsv", 3, 3) {
		capability, question, want := fields[0], fields[1], fields[2]
		n++
		rep := c.Answer(context.Background(), Request{Capability: capability, Query: question})
		if rep.Status != 200 {
			t.Errorf("%s %q: status %d %s", capability, question, rep.Status, rep.Body)
			continue
		}
		d := decode(t, rep.Body)
		if d.str("status") != "success" {
			t.Errorf("%s %q: status %q, want an answer: %s", capability, question, d.str("status"), rep.Body)
			continue
		}
		src := d.sources()
		answer := d.obj("response").str("answer")
		if want == "-" {
			if len(src) != 0 || !strings.HasPrefix(answer, "I found nothing") {
				t.Errorf("%s %q: want the not-found answer, got sources %v: %s", capability, question, src, answer)
			}
			continue
		}
		if len(src) == 0 || src[0] != [2]string{want, "direct"} {
			t.Errorf("%s %q: first source %v, want %s direct\n%s", capability, question, src, want, answer)
			continue
		}
		if !strings.Contains(answer, "("+want+"):") {
			t.Errorf("%s %q: the answer does not quote %s: %s", capability, question, want, answer)
		}
	}
	if n < 20 {
		t.Fatalf("only %d questions in the table; the issue asks for at least 20", n)
	}
}

// readTSV reads testdata/name: one row a line, tab-separated, with
// between min and max fields; blank lines and # comments are skipped.
func readTSV(t testing.TB, name string, min, max int) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < min || len(fields) > max {
			t.Fatalf("%s: bad line %q", name, line)
		}
		rows = append(rows, fields)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
