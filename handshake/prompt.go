package handshake

import (
	"strconv"
	"strings"
)

// promptText is the SDK's prompt (0.2's shape, with the real URLs 0.1.1
// printed as literal "{base}" and "{sid}"): the agent client parses the
// "- name: value" lines and needs sessionId, token and baseUrl. The mode is
// checked at creation to hold no line break, so no line can be forged.
// Where the SDK's words misled an agent that knew nothing else, they are
// ours: the token header on the action line too, the expiry as it is
// (sliding), and that the agent fills and the user submits. No added
// "- " line holds a colon, so the agent client reads no new name.
func (h *Handler) promptText(rec *Record, tok, base string, expiresIn int64) string {
	secs := strconv.FormatInt(expiresIn, 10)
	api := base + h.cfg.Prefix
	var b strings.Builder
	b.Grow(1024)
	b.WriteString("# Handshake Prompt - " + rec.Mode + "\n\n")
	b.WriteString("## Credentials\n")
	b.WriteString("- sessionId: " + rec.ID + "\n")
	b.WriteString("- token: " + tok + "\n")
	b.WriteString("- baseUrl: " + base + "\n")
	b.WriteString("- mode: " + rec.Mode + "\n")
	b.WriteString("- expiresIn: " + secs + "s\n\n")
	if h.cfg.Instructions != "" {
		b.WriteString("## Instructions\n" + h.cfg.Instructions + "\n\n")
	}
	b.WriteString("## Usage\n")
	b.WriteString("1. GET  " + api + "/context/" + rec.ID + "   (header X-Handshake-Token: <token>)\n")
	b.WriteString("2. POST " + api + "/action/" + rec.ID + `    {"actions":[{"type":"set","key":...,"value":...}]}   (the same header)` + "\n")
	b.WriteString("3. POST " + api + "/session/" + rec.ID + `/extend  {"extraSeconds":1800}  (optional)` + "\n\n")
	b.WriteString("## Security Notes\n")
	b.WriteString("- The session ends " + secs + " seconds after its last use (extend adds time)\n")
	b.WriteString("- Do NOT forward this prompt to others\n")
	b.WriteString("- The server will reject any AI attempt to overwrite user-filled fields\n")
	if rec.Form {
		b.WriteString("- You only fill the fields; the user reviews the form and submits it\n")
		b.WriteString("- To clear a field you set, send its value as null\n")
	}
	b.WriteString("\n")
	b.WriteString("## Waiting for user's request...")
	return b.String()
}
