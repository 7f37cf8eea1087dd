package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations"
	"github.com/dingbridge/dingbridge/web"
)

const mappingUsage = `Usage:
  dingbridge mapping import [-config file] [-apply] [-relink] [-actor name] file.csv
  dingbridge mapping export [-config file] [file.csv|-]

import reads links of DingTalk identities to accounts and prints, line by line, what
each would do: create, update, no-op, conflict or error. Nothing is written unless
-apply is given; then everything is written, or nothing if any line fails. An apply that
moves identities to another account (-relink) then ends the sign-in sessions opened
through them, and the console sessions of the accounts they left. The columns
are documented in mapping/csv.go (corp_id, user_id or union_id + app_key, username,
optional account_id, display_name, email, email_verified, phone, groups, disabled).

export writes every account with its identities (to standard output with - or no file).
`

// runMapping runs "dingbridge mapping import|export".
func runMapping(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mappingUsage)
		return exitUsage
	}
	switch args[0] {
	case "import":
		return runMappingImport(ctx, args[1:], stdout, stderr)
	case "export":
		return runMappingExport(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mappingUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "dingbridge mapping: unknown command %q\n\n%s", args[0], mappingUsage)
	return exitUsage
}

func runMappingImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mapping import", "mapping import [-config file] [-apply] [-relink] [-actor name] file.csv",
		"Reports what each line of file.csv would do; with -apply also does it, all or nothing.", stderr)
	path := configFlag(fs)
	apply := fs.Bool("apply", false, "write the changes (default: a dry run that writes nothing)")
	relink := fs.Bool("relink", false, "let a line move an identity that is linked to another account")
	actor := fs.String("actor", "import", "who imports, as the audit trail records it")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "dingbridge mapping import: name one CSV file")
		fs.Usage()
		return exitUsage
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge mapping import: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	pool, code := openCheckedDatabase(ctx, *path, "mapping import", stderr)
	if pool == nil {
		return code
	}
	defer pool.Close()

	// One request id for the whole run ties its audit rows together.
	m := mapping.Meta{Actor: *actor, RequestID: "import-" + mapping.NewID()}
	report, err := mapping.NewPostgres(pool, mapping.Options{}).Import(ctx, m, f, mapping.ImportOptions{Apply: *apply, Relink: *relink})
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge mapping import: %v\n", err)
		if errors.Is(err, mapping.ErrInvalid) {
			return exitUsage
		}
		return exitFailure
	}
	printReport(stdout, report, *apply)
	if !report.OK() {
		return exitFailure
	}
	if report.Applied && len(report.Moved) > 0 && !endMovedSessions(ctx, pool, report.Moved, stdout, stderr) {
		return exitFailure
	}
	return exitOK
}

// endMovedSessions ends what was signed in through the identities an applied import
// moved to another account, as the console does when it moves one: the provider's
// sign-in sessions of each identity, with the tokens issued under them, and the console
// sessions of the account it left. It prints how many ended, and reports whether all
// could be.
func endMovedSessions(ctx context.Context, pool *pgxpool.Pool, moved []mapping.MovedIdentity, stdout, stderr io.Writer) bool {
	sso, console := idp.NewPostgresStore(pool), web.NewPostgresSessions(pool)
	now := time.Now()
	identities, accounts := map[mapping.Key]bool{}, map[string]bool{}
	ended, consoleEnded, ok := 0, 0, true
	for _, mv := range moved {
		if !identities[mv.Identity] {
			identities[mv.Identity] = true
			n, err := sso.EndIdentitySessions(ctx, mv.Identity.CorpID, mv.Identity.UserID, now)
			if err != nil {
				fmt.Fprintf(stderr, "dingbridge mapping import: applied, but the sign-in sessions of %s were not ended: %v\n", mv.Identity, err)
				ok = false
			}
			ended += n
		}
		if !accounts[mv.From] {
			accounts[mv.From] = true
			n, err := console.RevokeAccount(ctx, mv.From, now)
			if err != nil {
				fmt.Fprintf(stderr, "dingbridge mapping import: applied, but the console sessions of account %s were not ended: %v\n", mv.From, err)
				ok = false
			}
			consoleEnded += n
		}
	}
	fmt.Fprintf(stdout, "Moved %d identities to another account: ended %d sign-in sessions through them and %d console sessions of the accounts they left.\n",
		len(identities), ended, consoleEnded)
	return ok
}

// printReport prints an import's outcome line by line, then a summary.
func printReport(w io.Writer, r mapping.ImportReport, apply bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tOUTCOME\tIDENTITY\tUSERNAME\tDETAIL")
	for _, l := range r.Lines {
		identity := "-"
		if l.Identity != (mapping.Key{}) {
			identity = l.Identity.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.Line, l.Outcome, identity, l.Username, l.Detail)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d lines: %d create, %d update, %d no-op, %d conflict, %d error.\n", len(r.Lines),
		r.Count(mapping.OutcomeCreate), r.Count(mapping.OutcomeUpdate), r.Count(mapping.OutcomeNoop),
		r.Count(mapping.OutcomeConflict), r.Count(mapping.OutcomeError))
	switch {
	case r.Applied:
		fmt.Fprintln(w, "Applied: every change above is written.")
	case apply:
		fmt.Fprintln(w, "Nothing written: fix the conflicts and errors above, then run again.")
	default:
		fmt.Fprintln(w, "Dry run: nothing written. Run again with -apply to write.")
	}
}

func runMappingExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mapping export", "mapping export [-config file] [file.csv|-]",
		"Writes every account with its DingTalk identities as CSV (to standard output with - or no file).", stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "dingbridge mapping export: name at most one file")
		fs.Usage()
		return exitUsage
	}
	store, done, code := openMappingStore(ctx, *path, "mapping export", stderr)
	if store == nil {
		return code
	}
	defer done()

	out := fs.Arg(0)
	if out == "" || out == "-" {
		if err := store.Export(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "dingbridge mapping export: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	if err := exportFile(ctx, store, out); err != nil {
		fmt.Fprintf(stderr, "dingbridge mapping export: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// exportFile writes the export beside path and renames it into place, so that path
// never holds half an export. The file holds personal data: only its owner may read it.
func exportFile(ctx context.Context, store *mapping.Postgres, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dingbridge-export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := store.Export(ctx, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// openMappingStore loads the configuration, connects to Postgres and checks that the
// schema is up to date. On failure it prints why and returns a nil store and the exit
// code; otherwise done closes the pool.
func openMappingStore(ctx context.Context, path, cmd string, stderr io.Writer) (*mapping.Postgres, func(), int) {
	pool, code := openCheckedDatabase(ctx, path, cmd, stderr)
	if pool == nil {
		return nil, nil, code
	}
	return mapping.NewPostgres(pool, mapping.Options{}), pool.Close, exitOK
}

// openCheckedDatabase is openMappingStore's pool, for commands that use more than the
// mapping; the caller closes it.
func openCheckedDatabase(ctx context.Context, path, cmd string, stderr io.Writer) (*pgxpool.Pool, int) {
	cfg, ok := loadValidConfig(path, true, stderr)
	if !ok {
		return nil, exitUsage
	}
	pool, err := openDatabase(ctx, cfg.Database)
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge %s: %v\n", cmd, err)
		return nil, exitFailure
	}
	if err := checkMigrated(ctx, pool); err != nil {
		pool.Close()
		fmt.Fprintf(stderr, "dingbridge %s: %v\n", cmd, err)
		return nil, exitFailure
	}
	return pool, exitOK
}

// checkMigrated refuses a database that lacks migrations: the tables would be missing.
func checkMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	list, err := migrations.Status(ctx, pool)
	if err != nil {
		return err
	}
	for _, m := range list {
		if !m.Applied {
			return fmt.Errorf("the database lacks migration %04d_%s: run dingbridge migrate up first", m.Version, m.Name)
		}
	}
	return nil
}
