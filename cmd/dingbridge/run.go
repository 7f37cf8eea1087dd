package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dingbridge/dingbridge/migrations"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes: 2 means the command line or the configuration is wrong (fix and
// retry); 1 means something failed while running.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `dingbridge: an OpenID Connect provider that signs people in with DingTalk.

Usage:
  dingbridge serve   [-config file]          run the provider against Postgres
  dingbridge migrate [-config file] up|status  apply or list database migrations
  dingbridge mapping import|export [-config file] ...  import or export links as CSV
  dingbridge keys    [-config file] rotate|list  rotate or list the token signing keys
  dingbridge demo    [-listen addr] [-dingtalk-listen addr]
                                             run everything on this machine, in memory,
                                             with a simulated DingTalk
  dingbridge bench   [-demo] [-scenario s] [-c n] [-d duration]  load-test sign-ins
  dingbridge version                         print the version

The configuration file is -config or $DINGBRIDGE_CONFIG; config.example.yaml
documents every key. Run "dingbridge <command> -h" for a command's flags.
`

// run is the whole program: main only adds the signal context and exits with
// the code run returns, so tests can drive every command in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "mapping":
		return runMapping(ctx, rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "dingbridge: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// newFlagSet returns a flag set whose -h output names the command and says
// what it does.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dingbridge %s\n\n%s\n", synopsis, about)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args; done reports that run should return code at once
// (after -h, or on a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	}
	return exitOK, false
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("DINGBRIDGE_CONFIG"), "configuration file (default $DINGBRIDGE_CONFIG)")
}

// loadValidConfig loads and validates the configuration, printing every
// problem, one per line, when it is not usable.
func loadValidConfig(path string, needDatabase bool, stderr io.Writer) (*Config, bool) {
	if path == "" {
		fmt.Fprintln(stderr, "dingbridge: no configuration: pass -config file or set DINGBRIDGE_CONFIG (see config.example.yaml)")
		return nil, false
	}
	cfg, err := LoadConfig(path, os.LookupEnv)
	if err == nil {
		err = cfg.Validate(needDatabase)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge: configuration %s is not valid:\n", path)
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  - %s\n", line)
		}
		return nil, false
	}
	return cfg, true
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "serve [-config file]",
		"Runs the provider: loads the configuration, connects to Postgres, applies\n"+
			"migrations when database.auto_migrate is on, and serves HTTP until SIGINT/SIGTERM.", stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, ok := loadValidConfig(*path, true, stderr)
	if !ok {
		return exitUsage
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err := serve(ctx, cfg, logger, stdout); err != nil {
		logger.Error("dingbridge stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("migrate", "migrate [-config file] up|status",
		"up      applies pending migrations (safe to run from several replicas at once)\n"+
			"status  lists applied and pending migrations", stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fmt.Fprintln(stderr, "dingbridge migrate: say up or status")
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadValidConfig(*path, true, stderr)
	if !ok {
		return exitUsage
	}
	pool, err := openDatabase(ctx, cfg.Database)
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge migrate: %v\n", err)
		return exitFailure
	}
	defer pool.Close()

	if fs.Arg(0) == "up" {
		if err := migrations.Up(ctx, pool); err != nil {
			fmt.Fprintf(stderr, "dingbridge migrate up: %v\n", err)
			return exitFailure
		}
	}
	list, err := migrations.Status(ctx, pool)
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge migrate status: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, m := range list {
		state, at := "pending", "-"
		if m.Applied {
			state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%04d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	_ = tw.Flush()
	return exitOK
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "version", "Prints the version of this binary.", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "dingbridge %s (%s%s)\n", version, runtime.Version(), rev)
	return exitOK
}
