package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

func init() {
	registerAHPSubcommand(solveCommand)
}

// solveCommand is `caddy ahp solve <challenge> <difficulty>`: the agent's
// side of the Agent Handoff proof of work, for trying a provider by hand.
func solveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "solve <challenge> <difficulty>",
		Short: "Solve an Agent Handoff proof-of-work challenge",
		Long: `Find the nonce of an Agent Handoff proof-of-work challenge (seed 002, §7.1):
the smallest decimal nonce, counting from 0, such that
SHA-256(challenge + nonce) has at least <difficulty> leading zero bits
(docs/agent-handoff.md). Prints the nonce; uses every CPU.

  ch=$(curl -s https://api.example.com/v1/sandboxes/challenge)
  caddy ahp solve "$(echo "$ch" | jq -r .challenge)" "$(echo "$ch" | jq -r .difficulty)"

With --json, prints the admission object to send to the create endpoint:
  {"type":"proof_of_work","challenge":"…","nonce":"…"}`,
	}
	timeout := cmd.Flags().Duration("timeout", 10*time.Minute, "give up after this long")
	asJSON := cmd.Flags().Bool("json", false, "print the admission object instead of the bare nonce")
	cmd.RunE = ahpRunE(func(cmd *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usageErrorf("expected <challenge> <difficulty>")
		}
		challenge := args[0]
		if challenge == "" || len(challenge) > 1024 {
			return usageErrorf("the challenge must be 1 to 1024 characters")
		}
		difficulty, err := strconv.Atoi(args[1])
		if err != nil || difficulty < 0 || difficulty > handoff.MaxDifficulty {
			return usageErrorf("difficulty %q: want a number of bits from 0 to %d", args[1], handoff.MaxDifficulty)
		}
		if *timeout <= 0 {
			return usageErrorf("--timeout %s: want a positive duration, e.g. --timeout 10m", *timeout)
		}
		parent := cmd.Context()
		if parent == nil {
			parent = context.Background()
		}
		ctx, cancel := context.WithTimeout(parent, *timeout)
		defer cancel()
		start := time.Now()
		nonce, err := handoff.Solve(ctx, challenge, difficulty)
		if err != nil {
			return fmt.Errorf("no nonce within %s: %v", *timeout, err)
		}
		if *asJSON {
			b, _ := json.Marshal(struct {
				Type      string `json:"type"`
				Challenge string `json:"challenge"`
				Nonce     string `json:"nonce"`
			}{"proof_of_work", challenge, nonce})
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), nonce)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "solved %d bits in %s\n", difficulty, time.Since(start).Round(time.Millisecond))
		return nil
	})
	return cmd
}
