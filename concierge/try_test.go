package concierge

import (
	"context"
	"fmt"
	"testing"
)

func TestTry(t *testing.T) {
	c, _ := demoConcierge(t)
	for _, r := range []Request{
		{Capability: "content_search", Query: "lifetime repair promise"},
		{Capability: "content_search", Query: "hard wax oil"},
		{Capability: "content_search", Query: "since 1987"},
		{Capability: "content_search", Query: "drawer"},
		{Capability: "content_search", Query: "Portland"},
	} {
		rep := c.Answer(context.Background(), r)
		fmt.Printf("\n>>> %s: %s\n%d %s\n", r.Capability, r.Query, rep.Status, rep.Body)
	}
}
