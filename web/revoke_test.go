package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
)

// TestConsoleChangeEndsSessionsAtOnce: an administrator whose role another
// administrator takes away in the console loses their sessions at the save,
// not on their next request, so that giving the role back at once does not
// revive them (ADM-04).
func TestConsoleChangeEndsSessionsAtOnce(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		for _, tt := range []struct {
			name          string
			demote, again func(t *testing.T, a mapping.Account) url.Values
			path          string
		}{
			{"groups", func(t *testing.T, a mapping.Account) url.Values {
				f := editForm(a, a.DisplayName)
				f.Set("groups", "staff")
				return f
			}, func(t *testing.T, a mapping.Account) url.Values {
				f := editForm(a, a.DisplayName)
				f.Set("groups", "admins")
				return f
			}, "/edit"},
			{"disabled", func(t *testing.T, a mapping.Account) url.Values {
				return url.Values{"disabled": {"true"}, "version": {strconv.FormatInt(a.Version, 10)}}
			}, func(t *testing.T, a mapping.Account) url.Values {
				return url.Values{"disabled": {"false"}, "version": {strconv.FormatInt(a.Version, 10)}}
			}, "/disabled"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				other, err := c.st.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: "admin-" + tt.name, Groups: []string{"admins"}})
				if err != nil {
					t.Fatal(err)
				}
				ck, _ := c.signIn(t, other)
				if !signedIn(t, c.h, ck) {
					t.Fatal("a fresh session is refused")
				}
				for _, step := range []func(*testing.T, mapping.Account) url.Values{tt.demote, tt.again} {
					if status, loc, body := c.post(t, accountPath(other.ID)+tt.path, step(t, c.account(t, other.ID))); status != http.StatusSeeOther || !strings.Contains(loc, "?ok=") {
						t.Fatalf("save: %d\n%s", status, body)
					}
				}
				if !c.s.isAdmin(c.account(t, other.ID)) {
					t.Fatal("the role did not come back")
				}
				if signedIn(t, c.h, ck) {
					t.Error("a session from before the role was taken away works again once it came back")
				}
				if !signedIn(t, c.h, c.ck) {
					t.Error("the administrator who made the change was signed out")
				}
			})
		}
	})
}

// TestConsoleIdentityChangeEndsSessions: disabling, unlinking or relinking
// an identity ends the provider's sign-in sessions of that identity (through
// Config.EndIdentitySessions) and the console sessions of the account it
// belonged to; enabling it ends nothing.
func TestConsoleIdentityChangeEndsSessions(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		var ended []mapping.Key
		c.s.cfg.EndIdentitySessions = func(_ context.Context, k mapping.Key) error {
			ended = append(ended, k)
			return nil
		}
		// 李四 becomes an administrator, signed in to the console.
		lisi := c.makeAdmin(t, c.staff.ID)
		k := c.lisiID.Key()
		version := func() string { return strconv.FormatInt(c.binding(t, k).Version, 10) }
		steps := []struct {
			name, path string
			form       func() url.Values
			ends       bool
		}{
			{"disable", "/identity-disabled", func() url.Values {
				return url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {version()}, "disabled": {"true"}}
			}, true},
			{"enable", "/identity-disabled", func() url.Values {
				return url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {version()}, "disabled": {"false"}}
			}, false},
			{"relink", "/relink", func() url.Values {
				return url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {version()}, "to": {c.admin.Username}}
			}, true},
		}
		owner := lisi.ID
		for _, st := range steps {
			ck, _ := c.signIn(t, c.account(t, owner))
			ended = nil
			if status, loc, body := c.post(t, accountPath(owner)+st.path, st.form()); status != http.StatusSeeOther || !strings.Contains(loc, "?ok=") {
				t.Fatalf("%s: %d %s\n%s", st.name, status, loc, body)
			}
			wantEnded := []mapping.Key(nil)
			if st.ends {
				wantEnded = []mapping.Key{k}
			}
			if !slices.Equal(ended, wantEnded) {
				t.Errorf("%s: provider sessions ended for %v, want %v", st.name, ended, wantEnded)
			}
			if owner != c.admin.ID {
				if got := signedIn(t, c.h, ck); got == st.ends {
					t.Errorf("%s: console session of the identity's account still signed in = %v, want %v", st.name, got, !st.ends)
				}
			}
			if st.name == "relink" {
				owner = c.admin.ID
			}
		}
		// Unlink, from 张三 (the signed-in administrator) now: the provider's
		// sessions of the identity end; 张三, changing their own account,
		// stays signed in to the console.
		ended = nil
		if status, loc, _ := c.post(t, accountPath(owner)+"/unlink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {version()}}); status != http.StatusSeeOther || !strings.Contains(loc, "?ok=") {
			t.Fatalf("unlink: %d %s", status, loc)
		}
		if !slices.Equal(ended, []mapping.Key{k}) {
			t.Errorf("unlink: provider sessions ended for %v, want %v", ended, k)
		}
		if !signedIn(t, c.h, c.ck) {
			t.Error("unlink of an identity of one's own account signed the administrator out")
		}
	})
}

// TestImportRelinkEndsSessions: an applied import that moves an identity to
// another account ends the identity's sign-in sessions and the console
// sessions of the account it left, as relinking it by hand does; its dry
// run ends nothing, and nor does a line linking an identity that was not
// linked.
func TestImportRelinkEndsSessions(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		var ended []mapping.Key // written by the import's goroutine, read after imports.Wait
		c.s.cfg.EndIdentitySessions = func(_ context.Context, k mapping.Key) error {
			ended = append(ended, k)
			return nil
		}
		// 李四 is an administrator too, signed in to the console.
		lisi := c.makeAdmin(t, c.staff.ID)
		lck, _ := c.signIn(t, c.account(t, lisi.ID))

		// 李四's identity moves to 张三; 王五's, not linked, is linked to 张三.
		k, w := c.lisiID.Key(), c.wangwuID.Key()
		file := "corp_id,user_id,username\n" + k.CorpID + "," + k.UserID + ",zhangsan\n" + w.CorpID + "," + w.UserID + ",zhangsan\n"
		rec := c.upload(t, c.ck, c.csrf, "move.csv", []byte(file), true, "en")
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("upload: %d\n%s", rec.Code, rec.Body)
		}
		c.s.imports.Wait()
		id := strings.TrimPrefix(rec.Header().Get("Location"), "/admin/import/")
		job, err := c.st.ImportJob(t.Context(), c.admin.ID, id, 0)
		if err != nil || job.State != mapping.JobPreviewed {
			t.Fatalf("job after the dry run: %+v, %v; want previewed", job, err)
		}
		if len(ended) != 0 || !signedIn(t, c.h, lck) {
			t.Errorf("the dry run ended sessions of %v (李四 signed in: %v), want none", ended, signedIn(t, c.h, lck))
		}

		rec = c.do(t, http.MethodPost, "/admin/import/"+id+"/apply", c.ck, url.Values{"csrf": {c.csrf}, "digest": {job.Digest}}, inEnglish)
		c.s.imports.Wait()
		if job, err = c.st.ImportJob(t.Context(), c.admin.ID, id, 0); rec.Code != http.StatusSeeOther || err != nil || job.State != mapping.JobApplied {
			t.Fatalf("apply: %d, job %+v, %v; want applied", rec.Code, job, err)
		}
		if b := c.binding(t, k); b.AccountID != c.admin.ID {
			t.Fatalf("李四's identity is linked to %q after the apply, want 张三 %q", b.AccountID, c.admin.ID)
		}
		if !slices.Equal(ended, []mapping.Key{k}) {
			t.Errorf("provider sessions ended for %v, want %v alone", ended, k)
		}
		if signedIn(t, c.h, lck) {
			t.Error("李四, whose identity the import moved away, is still signed in to the console")
		}
		if !signedIn(t, c.h, c.ck) {
			t.Error("the administrator who applied the import was signed out")
		}
	})
}

// makeAdmin puts the account in the admin group and returns it as saved.
func (c *accountsConsole) makeAdmin(t *testing.T, id string) mapping.Account {
	t.Helper()
	a := c.account(t, id)
	a.Groups = []string{"admins"}
	a, err := c.st.UpdateAccount(t.Context(), mapping.Meta{Actor: "test"}, a)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
