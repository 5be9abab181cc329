package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

func init() {
	registerAHPSubcommand(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "version",
			Short: "Print the caddy-ahp plugin's version",
			Long: `Print the caddy-ahp plugin's version, the AHP protocol version it speaks and
the Caddy version it is built into, e.g.

  caddy-ahp 0.2.0-dev (AHP 0.1, Caddy v2.11.9)`,
		}
		cmd.RunE = ahpRunE(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usageErrorf("unexpected arguments %q", args)
			}
			simple, _ := caddy.Version()
			fmt.Fprintf(cmd.OutOrStdout(), "caddy-ahp %s (AHP %s, Caddy %s)\n", PluginVersion(), manifest.Version, simple)
			return nil
		})
		return cmd
	})
}
