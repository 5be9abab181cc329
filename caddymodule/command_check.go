package caddymodule

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddy-ahp/caddy-ahp/conformance"
)

func init() {
	registerAHPSubcommand(newCheckCommand)
}

func newCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [flags] <url>",
		Short: "Check whether a site speaks AHP correctly (exit 1 on a failed MUST, 3 when inconclusive)",
		Long: `Check a site from the outside, as an agent would: discovery (manifest,
Link header, in-page notice, Accept negotiation), MODE1 content, the converse
endpoint's refusals and answers, rate limit headers, the MCP and OpenAPI
front doors, and Agent Handoff and Handshake Prompt where the site offers
them. Works against any site, behind this plugin or not.

Each check has a level (MUST or SHOULD), the spec section it tests, what it
saw and, on failure, how to fix it. The exit code is 0 when every MUST
holds, 1 when one fails, 2 on a usage error, 3 when none failed but some
could not be checked (the site answered 429, the budget ran out, the site
stopped answering: run it again later), 130 when interrupted.

The checker is polite: a User-Agent naming it, sequential requests at
--rate per second, at most --budget requests, redirects followed only within
the site, a --timeout per request. It sends nothing that changes state
unless asked: --rate-limit spends the site's rate limit for your address
until a 429, --create-sandbox solves an Agent Handoff challenge and creates
(then deletes) a sandbox, --hpp creates a Handshake Prompt session. The
converse probes are requests the spec requires the site to refuse, and one
read-only question to each MODE2 capability.

TLS: certificates are verified against the system's roots. --cacert FILE
trusts the PEM CA certificate(s) in FILE too (a staging site with a private
CA); --insecure verifies nothing, and the report says so in a warning line
(text) and "insecure": true (JSON).

--only and --skip take groups (discovery, content, converse, mcp, openapi,
integrations, handoff, hpp, ratelimit) or check ids; --list shows the checks.
--json prints the report in the documented format (--json-schema prints its
JSON Schema; see docs/conformance.md).`,
		Example: `  caddy ahp check https://example.com
  caddy ahp check --json https://example.com > report.json
  caddy ahp check --only discovery,converse https://example.com
  caddy ahp check --rate-limit --hpp --create-sandbox https://staging.example.com
  caddy ahp check --cacert staging-ca.pem https://staging.internal`,
	}
	f := cmd.Flags()
	f.Bool("json", false, "print the report as JSON (the documented format)")
	f.StringSlice("only", nil, "run only these groups or checks (comma-separated)")
	f.StringSlice("skip", nil, "leave out these groups or checks (comma-separated)")
	f.Bool("rate-limit", false, "drive the site to a 429 and check it (spends your address's limit)")
	f.Bool("create-sandbox", false, "Agent Handoff: solve a challenge, create a sandbox, replay the admission")
	f.Bool("hpp", false, "Handshake Prompt: create a session and drive it")
	f.String("hpp-prefix", conformance.DefaultHPPPrefix, "the Handshake Prompt endpoints' prefix")
	f.Int("budget", conformance.DefaultBudget, "the most requests to send")
	f.Float64("rate", conformance.DefaultRate, "the most requests per second")
	f.Duration("timeout", conformance.DefaultTimeout, "the longest wait for one answer")
	f.String("cacert", "", "trust the PEM CA certificate(s) in this file besides the system's (a staging site with a private CA)")
	f.Bool("insecure", false, "skip TLS certificate verification (the report says so, loudly): prefer --cacert")
	f.String("color", "auto", "colour the table: auto (on a terminal, unless NO_COLOR is set), always or never")
	f.Bool("list", false, "list the checks and exit (with --json: as a JSON array)")
	f.Bool("json-schema", false, "print the JSON Schema of the --json report and exit")
	cmd.RunE = ahpRunE(runCheck)
	return cmd
}

func runCheck(cmd *cobra.Command, args []string) error {
	f := cmd.Flags()
	out := cmd.OutOrStdout()
	if list, _ := f.GetBool("list"); list {
		if asJSON, _ := f.GetBool("json"); asJSON {
			return conformance.WriteCatalogueJSON(out)
		}
		return conformance.WriteCatalogue(out)
	}
	if js, _ := f.GetBool("json-schema"); js {
		_, err := out.Write(conformance.ReportSchema)
		return err
	}
	if len(args) != 1 {
		return usageErrorf("expected one site URL, got %d arguments", len(args))
	}
	opts := conformance.Options{URL: args[0], Version: PluginVersion()}
	opts.Only, _ = f.GetStringSlice("only")
	opts.Skip, _ = f.GetStringSlice("skip")
	opts.Only, opts.Skip = splitList(opts.Only), splitList(opts.Skip)
	opts.RateLimit, _ = f.GetBool("rate-limit")
	opts.CreateSandbox, _ = f.GetBool("create-sandbox")
	opts.HPP, _ = f.GetBool("hpp")
	opts.HPPPrefix, _ = f.GetString("hpp-prefix")
	opts.Budget, _ = f.GetInt("budget")
	opts.Rate, _ = f.GetFloat64("rate")
	opts.Timeout, _ = f.GetDuration("timeout")
	opts.Insecure, _ = f.GetBool("insecure")
	if path, _ := f.GetString("cacert"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return usageErrorf("--cacert: %v", err)
		}
		opts.CACerts = pem
	}
	if opts.Budget <= 0 {
		return usageErrorf("--budget must be at least 1")
	}
	if opts.Rate <= 0 {
		return usageErrorf("--rate must be more than 0")
	}
	if opts.Timeout <= 0 {
		return usageErrorf("--timeout must be more than 0")
	}
	asJSON, _ := f.GetBool("json")
	color, err := useColor(f.Lookup("color").Value.String())
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := conformance.Run(ctx, opts)
	if errors.Is(err, conformance.ErrOptions) {
		return usageErrorf("%s", strings.TrimPrefix(err.Error(), conformance.ErrOptions.Error()+": "))
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		_, _ = io.WriteString(cmd.ErrOrStderr(), "caddy ahp check: interrupted\n")
		return exitCode(exitInterrupted)
	}
	if err != nil {
		return err
	}
	if asJSON {
		err = conformance.WriteJSON(out, rep)
	} else {
		err = conformance.WriteText(out, rep, color)
	}
	if err != nil {
		return err
	}
	switch rep.Verdict {
	case conformance.VerdictFail:
		return exitCode(exitFailedMust)
	case conformance.VerdictInconclusive:
		return exitCode(exitInconclusive)
	}
	return nil
}

// Exit codes of `caddy ahp check` besides 0 (pass) and 2 (usage).
const (
	exitFailedMust   = 1
	exitInconclusive = 3   // no MUST failed, some could not be checked
	exitInterrupted  = 130 // Ctrl-C, as a shell reports SIGINT
)

// useColor decides --color: auto means stdout is a terminal and NO_COLOR
// (https://no-color.org) is unset.
func useColor(mode string) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if _, set := os.LookupEnv("NO_COLOR"); set {
			return false, nil
		}
		return term.IsTerminal(int(os.Stdout.Fd())), nil
	}
	return false, usageErrorf("--color %q: use auto, always or never", mode)
}
