package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// demoUnlinked are the simulator employees the demo leaves unlinked, so
// that signing in as them shows the "waiting for an administrator" page.
var demoUnlinked = map[string]bool{"manager4927": true, "chenchen": true}

// seedDemo fills the demo's mapping from the simulator's people: most are
// linked to an account of their own; a few are left unlinked, and people
// who left their corp are linked but disabled, as the directory event
// would leave them. It returns one line per person for the demo to print.
// A database seeded before (demo -database-url, bench) keeps the people it
// has, as administrators may have changed them, and gains those it lacks.
func seedDemo(ctx context.Context, store mapping.Store, fixture *fake.Fixture) ([]string, error) {
	m := mapping.Meta{Actor: "demo", Source: mapping.SourceImport}
	var lines []string
	for _, corp := range fixture.Corps {
		appKey := ""
		if len(corp.Apps) > 0 {
			appKey = corp.Apps[0].AppKey
		}
		for _, e := range corp.Employees {
			id := mapping.Identity{
				CorpID: corp.ID, UserID: e.UserID, UnionID: e.UnionID, OpenID: e.OpenID, AppKey: appKey,
				Name: e.Name, Mobile: e.Mobile, OrgEmail: e.OrgEmail, Email: e.Email,
				JobNumber: e.JobNumber, Title: e.Title, DeptIDs: e.DeptIDs, Active: e.Active,
			}
			switch _, err := store.Binding(ctx, id.Key()); {
			case err == nil:
				lines = append(lines, fmt.Sprintf("%s\t%s\t%s\t%s", corp.Name, e.Name, e.UserID, "kept as the database has it"))
				continue
			case !errors.Is(err, mapping.ErrNotFound):
				return nil, fmt.Errorf("demo identity %s/%s: %w", corp.ID, e.UserID, err)
			}
			state := "linked"
			b := mapping.Binding{Identity: id, Source: mapping.SourceImport}
			if demoUnlinked[e.UserID] {
				state = "not linked: signing in records a request for an administrator"
			} else {
				groups := []string{"staff"}
				if e.Admin {
					groups = append(groups, "admins")
				}
				username := strings.ToLower(e.UserID)
				acct, err := store.CreateAccount(ctx, m, mapping.Account{
					Username: username, DisplayName: e.Name,
					Email: e.OrgEmail, EmailVerified: e.OrgEmail != "", Phone: e.Mobile, Groups: groups,
				})
				if errors.Is(err, mapping.ErrConflict) {
					// The account is there without this identity: link it again.
					acct, err = store.AccountByUsername(ctx, username)
				}
				if err != nil {
					return nil, fmt.Errorf("demo account for %s: %w", e.UserID, err)
				}
				b.AccountID = acct.ID
			}
			b, err := store.CreateBinding(ctx, m, b)
			if err != nil {
				return nil, fmt.Errorf("demo identity %s/%s: %w", corp.ID, e.UserID, err)
			}
			if e.Left {
				if _, err := store.SetBindingDisabled(ctx, m, b.Key(), true); err != nil {
					return nil, err
				}
				state = "left the corp: disabled"
			}
			lines = append(lines, fmt.Sprintf("%s\t%s\t%s\t%s", corp.Name, e.Name, e.UserID, state))
		}
	}
	return lines, nil
}
