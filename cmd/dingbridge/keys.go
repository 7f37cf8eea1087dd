package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/migrations"
)

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keys", "keys [-config file] rotate|list",
		"rotate  makes the next signing key current now, publishes a new next key and\n"+
			"        keeps the old one published for oidc.key_retire_after; every replica\n"+
			"        picks the change up within a minute. Tokens already issued stay valid.\n"+
			"list    shows the signing keys and their states", stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "rotate" && fs.Arg(0) != "list") {
		fmt.Fprintln(stderr, "dingbridge keys: say rotate or list")
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadValidConfig(*path, true, stderr)
	if !ok {
		return exitUsage
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err := keysCommand(ctx, cfg, fs.Arg(0), logger, stdout); err != nil {
		fmt.Fprintf(stderr, "dingbridge keys %s: %v\n", fs.Arg(0), err)
		return exitFailure
	}
	return exitOK
}

func keysCommand(ctx context.Context, cfg *Config, verb string, logger *slog.Logger, stdout io.Writer) error {
	pool, err := openDatabase(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *cfg.Database.AutoMigrate {
		if err := migrations.Up(ctx, pool); err != nil {
			return fmt.Errorf("apply migrations (database.auto_migrate is on): %w", err)
		}
	}
	store := idp.NewPostgresStore(pool)
	keys, err := newKeyManager(cfg, store, logger)
	if err != nil {
		return err
	}
	if err := keys.Ensure(ctx); err != nil {
		return err
	}
	before, err := store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	set := before
	if verb == "rotate" {
		if err := keys.Rotate(ctx); err != nil {
			return err
		}
		if set, err = store.SigningKeys(ctx); err != nil {
			return err
		}
		reportRotation(stdout, before, set)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tCURRENT SINCE\tRETIRED")
	for _, k := range set.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
			k.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(k.ActivatedAt), timeOrDash(k.RetiredAt))
	}
	return tw.Flush()
}

// reportRotation says, per algorithm, whether the current key changed: the
// key manager refuses to rotate a key that became current less than a
// minute ago, so that clients can fetch the new key first.
func reportRotation(w io.Writer, before, after idp.KeySet) {
	current := func(set idp.KeySet) map[string]string {
		m := map[string]string{}
		for _, k := range set.Keys {
			if k.State == idp.KeyCurrent {
				m[k.Algorithm] = k.ID
			}
		}
		return m
	}
	was, now := current(before), current(after)
	for _, alg := range []string{"RS256", "ES256"} {
		switch {
		case was[alg] == "" && now[alg] == "":
		case was[alg] != now[alg]:
			fmt.Fprintf(w, "%s: rotated; %s now signs, %s stays published until it retires\n", alg, now[alg], was[alg])
		default:
			fmt.Fprintf(w, "%s: not rotated: its current key became current less than a minute ago "+
				"(clients need time to fetch the next key); try again in a minute\n", alg)
		}
	}
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// newKeyManager builds the signing-key manager from the configuration.
func newKeyManager(cfg *Config, store idp.Store, logger *slog.Logger) (*idp.KeyManager, error) {
	kek, err := base64.StdEncoding.DecodeString(cfg.Secrets.KeyEncryptionKey)
	if err != nil { // Validate has checked it; this guards a caller that did not
		return nil, fmt.Errorf("secrets.key_encryption_key: %w", err)
	}
	return idp.NewKeyManager(idp.KeyConfig{
		Store:          store,
		KEK:            kek,
		RotationPeriod: cfg.OIDC.KeyRotationPeriod,
		RetireAfter:    cfg.OIDC.KeyRetireAfter,
		Logger:         logger,
	})
}
