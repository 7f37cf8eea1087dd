package mapping

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CopyAccounts and CopyIdentities write rows straight into the mapping's tables with COPY,
// search documents and match keys included, without validation, transactions per row or
// audit: for seeding benchmarks and load tests with a directory of a million people, which
// the audited methods would take hours to create. Product code never calls them.

// CopyAccounts copies accounts (their ID, CreatedAt and UpdatedAt set) into conn's database.
func CopyAccounts(ctx context.Context, conn *pgx.Conn, as []Account) error {
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"accounts"},
		[]string{"id", "username", "display_name", "email", "email_verified", "phone", "groups", "disabled_at",
			"email_key", "phone_key", "search_doc", "search_cjk", "created_at", "updated_at", "version"},
		pgx.CopyFromSlice(len(as), func(i int) ([]any, error) {
			a := as[i]
			doc := accountDoc(a)
			var disabledAt *time.Time
			if a.Disabled {
				disabledAt = &a.UpdatedAt
			}
			return []any{a.ID, a.Username, a.DisplayName, a.Email, a.EmailVerified, a.Phone, nonNil(a.Groups), disabledAt,
				emailKey(a.Email), phoneKey(a.Phone), doc, nonNil(cjkBigrams(nil, doc)), a.CreatedAt, a.UpdatedAt, max(a.Version, 1)}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy accounts: %w", err)
	}
	return nil
}

// CopyIdentities copies identities into conn's database; account returns the account a
// linked identity is linked to, for the copy of its search document.
func CopyIdentities(ctx context.Context, conn *pgx.Conn, bs []Binding, account func(id string) *Account) error {
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"dingtalk_identities"},
		[]string{"corp_id", "user_id", "union_id", "open_id", "app_key", "account_id", "status", "disabled_at", "source",
			"name", "mobile", "org_email", "email", "job_number", "title", "dept_ids", "active",
			"search_doc", "search_cjk", "search_account", "account_cjk", "last_login_at", "created_at", "updated_at", "version"},
		pgx.CopyFromSlice(len(bs), func(i int) ([]any, error) {
			b := bs[i]
			var a *Account
			if b.Linked() {
				if a = account(b.AccountID); a == nil {
					return nil, fmt.Errorf("identity %s: no account %q", b.Key(), b.AccountID)
				}
			}
			args := bindingArgs(b, a) // the insert's values, in insertBindingSQL's order
			status, disabledAt := "active", (*time.Time)(nil)
			if b.Disabled {
				status, disabledAt = "disabled", &b.UpdatedAt
			}
			return []any{b.CorpID, b.UserID, nullIfEmpty(b.UnionID), nullIfEmpty(b.OpenID), b.AppKey, nullIfEmpty(b.AccountID),
				status, disabledAt, string(b.Source), b.Name, b.Mobile, b.OrgEmail, b.Email, b.JobNumber, b.Title,
				nonNil(b.DeptIDs), b.Active, args[16], args[17], args[18], args[19], args[20], b.CreatedAt, b.UpdatedAt, max(b.Version, 1)}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy identities: %w", err)
	}
	return nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
