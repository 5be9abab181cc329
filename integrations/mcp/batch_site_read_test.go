package mcp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestBatchReadsTheSiteOnce: a batch of maxBatch reads of the content
// document, in both of its spellings, is one request charged the static
// tier once; it asks the site once, and every read still gets the
// document under the URI it asked for.
func TestBatchReadsTheSiteOnce(t *testing.T) {
	f := newFixture(t, nil, Options{})
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < maxBatch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		uri := "/llms.txt"
		if i%2 == 1 {
			uri = "http://shop.example/llms.txt"
		}
		b.WriteString(`{"jsonrpc":"2.0","id":` + strconv.Itoa(i+1) + `,"method":"resources/read","params":{"uri":"` + uri + `"}}`)
	}
	b.WriteByte(']')
	f.site.Charged()
	before := len(f.site.Received())
	w := f.do(http.MethodPost, b.String())
	if charged, reads := len(f.site.Charged()), len(f.site.Received())-before; charged != 1 || reads != 1 {
		t.Errorf("one request charged %d time(s) read the content document through the site %d times, want 1 and 1", charged, reads)
	}
	var replies []struct {
		ID     int `json:"id"`
		Result struct {
			Contents []struct {
				URI  string `json:"uri"`
				Text string `json:"text"`
			} `json:"contents"`
		} `json:"result"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &replies); err != nil || len(replies) != maxBatch {
		t.Fatalf("status %d, %d replies (%v): %.300s", w.Code, len(replies), err, w.Body.String())
	}
	first := replies[0].Result.Contents
	for _, rep := range replies {
		c := rep.Result.Contents
		want := "/llms.txt"
		if rep.ID%2 == 0 {
			want = "http://shop.example/llms.txt"
		}
		if len(c) != 1 || c[0].URI != want || c[0].Text == "" || c[0].Text != first[0].Text {
			t.Fatalf("reply %d: %+v, want the document under %s", rep.ID, c, want)
		}
	}
}
