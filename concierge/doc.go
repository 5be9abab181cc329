// Package concierge is a built-in MODE2 concierge (AHP §5.2): it reads
// the site through the site's own handler chain, indexes its pages for
// keyword retrieval, and answers converse requests extractively, quoting
// the pages and citing them.
package concierge
