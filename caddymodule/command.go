package caddymodule

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// `caddy ahp` groups the operator's tools: check (conformance of any
// site), manifest (what a Caddyfile's ahp blocks serve), key (a new API
// key), version, and whatever other files of this package register.
//
// # Adding a subcommand
//
// Any file of this package adds a subcommand from its init():
//
//	func init() {
//		registerAHPSubcommand(func() *cobra.Command {
//			cmd := &cobra.Command{
//				Use:   "solve <challenge> <difficulty>",
//				Short: "Solve an Agent Handoff proof-of-work challenge",
//				Long:  "…",
//			}
//			cmd.Flags().Duration("timeout", time.Minute, "give up after this long")
//			cmd.RunE = ahpRunE(func(cmd *cobra.Command, args []string) error {
//				if len(args) != 2 {
//					return usageErrorf("expected <challenge> <difficulty>")
//				}
//				…
//				fmt.Fprintln(cmd.OutOrStdout(), nonce)
//				return nil // exit 0
//			})
//			return cmd
//		})
//	}
//
// The constructor runs when Caddy builds its command tree, after every
// init(). Wrap RunE with ahpRunE: a nil error exits 0, usageErrorf exits 2
// (wrong arguments or flags; the message and a pointer to --help go to
// stderr), any other error exits 1 with its message on stderr, and
// exitCode(n) exits n silently (for a command that printed its own
// verdict). Check arguments inside RunE rather than with cobra.Args
// validators, whose errors would exit 1. Flag errors exit 2 by themselves.
// `caddy ahp --help` lists every registered subcommand.

var ahpSubcommands struct {
	sync.Mutex
	list []func() *cobra.Command
}

// registerAHPSubcommand adds a `caddy ahp` subcommand (see above).
func registerAHPSubcommand(newCmd func() *cobra.Command) {
	ahpSubcommands.Lock()
	defer ahpSubcommands.Unlock()
	ahpSubcommands.list = append(ahpSubcommands.list, newCmd)
}

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "ahp",
		Usage: "<command> [flags]",
		Short: "Agent Handshake Protocol tools: check a site, render a manifest, make a key, solve a proof of work",
		Long: `
Tools for operators of sites behind the caddy-ahp plugin, and for anyone
who wants to know whether a site speaks the Agent Handshake Protocol.

  caddy ahp check https://example.com       conformance of any site (exit 1 on a failed MUST)
  caddy ahp manifest --config Caddyfile     the manifest each ahp block would serve, or its errors
  caddy ahp key --name partner              a new API key line for auth { keys_file }
  caddy ahp solve <challenge> <difficulty>  solve an Agent Handoff proof of work
  caddy ahp version                         this plugin's version

Exit codes: 0 success, 1 failure, 2 usage error; check exits 1 when
a MUST failed, 3 when inconclusive (no MUST failed, some could not be
checked) and 130 when interrupted.
`,
		CobraFunc: buildAHPCommand,
	})
}

// buildAHPCommand fills in `caddy ahp` and its subcommands.
func buildAHPCommand(cmd *cobra.Command) {
	cmd.SilenceErrors = true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return reportError(c, usageErrorf("%v", err))
	})
	cmd.RunE = ahpRunE(func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			c.SetOut(c.ErrOrStderr())
			_ = c.Help()
			return exitCode(2)
		}
		return usageErrorf("unknown command %q; run `caddy ahp --help` for the commands", args[0])
	})
	ahpSubcommands.Lock()
	list := append([]func() *cobra.Command(nil), ahpSubcommands.list...)
	ahpSubcommands.Unlock()
	for _, newCmd := range list {
		sub := newCmd()
		sub.SilenceErrors = true
		cmd.AddCommand(sub)
	}
}

// cmdError carries an exit code; msg (if any) is printed to stderr.
type cmdError struct {
	code  int
	err   error
	usage bool
}

func (e *cmdError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *cmdError) Unwrap() error { return e.err }

// usageErrorf is a usage error: exit 2.
func usageErrorf(format string, args ...any) error {
	return &cmdError{code: 2, err: fmt.Errorf(format, args...), usage: true}
}

// exitCode exits with code without printing anything.
func exitCode(code int) error { return &cmdError{code: code} }

// ahpRunE adapts a subcommand's function to cobra's RunE with the exit
// codes documented above.
func ahpRunE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return reportError(cmd, f(cmd, args))
	}
}

// errSilent ends the process with status 1 after the message was printed:
// caddycmd.Main exits 1 on any plain error, and cobra stays silent because
// every ahp command sets SilenceErrors.
var errSilent = errors.New("failed")

// reportError prints err and turns it into what caddycmd.Main needs to exit
// with the right status.
func reportError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	cmd.SilenceErrors = true
	code := 1
	var ce *cmdError
	if errors.As(err, &ce) {
		code = ce.code
		if ce.err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.CommandPath(), ce.err)
		}
		if ce.usage {
			fmt.Fprintf(cmd.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.CommandPath(), err)
	}
	switch {
	case code == 0:
		return nil
	case code == 1:
		return errSilent
	default:
		// caddycmd keeps its exit-code error type unexported; this is the
		// documented way to obtain one.
		return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, nil)
	}
}

// splitList splits a comma-separated flag value ("a,b" or repeated flags).
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
