package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/caddy-ahp/caddy-ahp/auth"
)

func init() {
	registerAHPSubcommand(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "key [--name <name>]",
			Short: "Print a new API key as a `name: key` line for auth { keys_file }",
			Long: `Print a new random API key (256 bits, URL-safe base64) as one
"name: key" line of a keys file, on stdout:

  caddy ahp key --name partner-portal >> /etc/caddy/ahp-keys

The name (letters, digits, '.', '_', '-') identifies the key in rate limits
and logs; without --name one is made up. Give the agent the part after
"name: " as its credential (Authorization: Bearer <key>, or X-AHP-Key for
authentication api_key). The plugin reads the file at load; run
'caddy reload' after adding a line.`,
		}
		cmd.Flags().String("name", "", "the key's name in rate limits and logs")
		cmd.RunE = ahpRunE(runKey)
		return cmd
	})
}

func runKey(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return usageErrorf("unexpected arguments %q; the name is given with --name", args)
	}
	name, _ := cmd.Flags().GetString("name")
	if name == "" {
		name = "agent-" + randomHexString(4)
	}
	line, err := newKeyLine(name)
	if err != nil {
		return usageErrorf("%v", err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), line)
	return nil
}

// newKeyLine makes a key and checks its line with the parser the plugin
// loads keys files with, so that what is printed is always accepted.
func newKeyLine(name string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	line := name + ": " + base64.RawURLEncoding.EncodeToString(b)
	if _, err := auth.ParseKeys(strings.NewReader(line)); err != nil {
		return "", fmt.Errorf("--name %q: %v", name, strings.TrimPrefix(err.Error(), "keys file line 1: "))
	}
	return line, nil
}

func randomHexString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
