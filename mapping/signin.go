package mapping

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The store methods a sign-in uses. Each is one transaction, so that what the resolver
// decides is still true when it is written: an identity linked by an administrator a
// moment earlier is not linked again, and two auto-links never give one account two
// identities in a corp. (RecordSignIn's common case is one statement on Postgres, which
// is as atomic: see signInStatement.)

// maxSuggestions bounds the accounts suggested for one pending request.
const maxSuggestions = 10

// RecordSignIn implements Store.
func (c *core) RecordSignIn(ctx context.Context, id Identity) (Binding, *Account, error) {
	id = normalizeIdentity(id)
	if err := validateIdentity(id, false); err != nil {
		return Binding{}, nil, err
	}
	if st, ok := c.db.(signInStatement); ok && id.UserID != "" {
		b, a, done, err := st.recordKnownSignIn(ctx, id, c.now())
		if err != nil {
			return Binding{}, nil, fmt.Errorf("record sign-in of %s: %w", id.Key(), err)
		}
		if done {
			return b, a, nil
		}
	}
	var (
		b Binding
		a *Account
	)
	err := c.db.write(ctx, func(t tx) error {
		cur, err := c.findForSignIn(ctx, t, id)
		if err != nil {
			return err
		}
		var acct *Account
		if cur.Linked() {
			x, err := t.account(ctx, cur.AccountID, noLock)
			if err != nil {
				return fmt.Errorf("account %q: %w", cur.AccountID, err)
			}
			acct = &x
		}
		next, err := c.refresh(ctx, t, cur, id)
		if err != nil {
			return err
		}
		if acct != nil && !next.Disabled && !acct.Disabled {
			next.LastLoginAt = c.now()
		}
		if err := t.updateBinding(ctx, next, acct); err != nil {
			return err
		}
		b, a = next, acct
		return nil
	})
	if err != nil {
		return Binding{}, nil, fmt.Errorf("record sign-in of %s: %w", id.Key(), err)
	}
	return b, a, nil
}

// signInStatement is a backend that can record the common sign-in without a transaction.
// Every sign-in runs RecordSignIn, and its transaction costs five round trips to
// Postgres; most sign-ins are of an identity that exists under its userId and brings no
// unionId that another identity might hold (keepsUnionID), which one statement can
// record. recordKnownSignIn writes exactly what the transaction would and returns
// done=false, having changed nothing, for any other sign-in; the transaction then
// decides.
type signInStatement interface {
	recordKnownSignIn(ctx context.Context, id Identity, now time.Time) (b Binding, a *Account, done bool, err error)
}

// findForSignIn locks the identity's row: by (corp, userId), else by (corp, unionId) if the
// row's unionId came through the same app key (BR-08) and the row is not another userId's.
func (c *core) findForSignIn(ctx context.Context, t tx, id Identity) (Binding, error) {
	if id.UserID != "" {
		b, err := t.binding(ctx, id.Key(), lockUpdate)
		if !errors.Is(err, ErrNotFound) {
			return b, err
		}
	}
	if id.UnionID == "" {
		return Binding{}, ErrNotFound
	}
	b, err := t.bindingByUnionID(ctx, id.CorpID, id.UnionID, lockUpdate)
	if err != nil {
		return Binding{}, err
	}
	if b.AppKey != id.AppKey || (id.UserID != "" && b.UserID != id.UserID) {
		// Another developer's unionId, or a row keyed by another userId (a person who left
		// and came back?): not this identity. An administrator decides.
		return Binding{}, ErrNotFound
	}
	return b, nil
}

// refresh returns cur with the profile snapshot of id, and with id's unionId, openId and
// app key where cur has none or they come through the same app, unless another identity
// already holds that unionId. It changes neither the link nor the version: a sign-in is an
// observation, not an edit.
func (c *core) refresh(ctx context.Context, t tx, cur Binding, id Identity) (Binding, error) {
	next := cur
	next.Name, next.Mobile, next.OrgEmail, next.Email = id.Name, id.Mobile, id.OrgEmail, id.Email
	next.JobNumber, next.Title, next.DeptIDs, next.Active = id.JobNumber, id.Title, slices.Clone(id.DeptIDs), id.Active
	if keepsUnionID(cur, id) {
		if id.OpenID != "" && id.AppKey == cur.AppKey {
			next.OpenID = id.OpenID
		}
		return next, nil
	}
	holder, err := t.bindingByUnionID(ctx, id.CorpID, id.UnionID, noLock)
	switch {
	case err == nil && holder.Key() != cur.Key():
		return next, nil // keep ours; an administrator sorts out the two rows
	case err != nil && !errors.Is(err, ErrNotFound):
		return Binding{}, err
	}
	next.UnionID, next.AppKey = id.UnionID, id.AppKey
	if id.OpenID != "" {
		next.OpenID = id.OpenID
	}
	return next, nil
}

// keepsUnionID reports whether a sign-in of id leaves cur's unionId and app key as they
// are: id brings no unionId, the same one, or one from another app while cur has one.
// Only otherwise must refresh ask whether another identity holds id's unionId.
// signInSQL spells the same rule.
func keepsUnionID(cur Binding, id Identity) bool {
	return id.UnionID == "" || (cur.UnionID != "" && cur.AppKey != id.AppKey) || id.UnionID == cur.UnionID
}

// AutoLink implements Store.
func (c *core) AutoLink(ctx context.Context, m Meta, id Identity, attr Attribute) (Binding, Account, error) {
	id = normalizeIdentity(id)
	if err := validateIdentity(id, true); err != nil {
		return Binding{}, Account{}, err
	}
	if !attr.valid() {
		return Binding{}, Account{}, invalid("attribute", "auto-link matches job_number, org_email or mobile; got %q", attr)
	}
	if err := validateMeta(m); err != nil {
		return Binding{}, Account{}, err
	}
	m.Source = SourceAuto
	var (
		b Binding
		a Account
	)
	err := c.db.write(ctx, func(t tx) error {
		cur, exists, err := c.prepareLink(ctx, t, id)
		if err != nil {
			return err
		}
		field, value := matchOf(attr, id)
		if value == "" {
			return fmt.Errorf("identity has no %s: %w", attr, ErrNotFound)
		}
		matches, err := activeAccounts(ctx, t, field, value)
		if err != nil {
			return err
		}
		if len(matches) != 1 {
			return fmt.Errorf("%d active accounts match %s: %w", len(matches), attr, ErrNotFound)
		}
		// Lock the account, then look again: this serializes auto-links to one account, so
		// two identities of one corp cannot both take it.
		if a, err = t.account(ctx, matches[0].ID, lockUpdate); err != nil {
			return err
		}
		if a.Disabled || !fieldMatches(a, field, value) {
			return fmt.Errorf("the matching account changed: %w", ErrNotFound)
		}
		others, err := t.bindingsByAccount(ctx, a.ID)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(others, func(o Binding) bool { return o.CorpID == id.CorpID }) {
			return fmt.Errorf("the matching account has an identity in corp %s already: %w", id.CorpID, ErrNotFound)
		}
		b, err = c.linkForSignIn(ctx, t, m, cur, exists, a, attr)
		return err
	})
	if err != nil {
		return Binding{}, Account{}, fmt.Errorf("auto-link %s: %w", id.Key(), err)
	}
	return b, a, nil
}

// prepareLink locks the identity, if it exists, for a sign-in rule that is about to link
// it, and returns it refreshed with id's profile (or built from id). It refuses identities
// that are linked or disabled, and a unionId that another identity holds.
func (c *core) prepareLink(ctx context.Context, t tx, id Identity) (Binding, bool, error) {
	cur, err := t.binding(ctx, id.Key(), lockUpdate)
	switch {
	case errors.Is(err, ErrNotFound):
		if id.UnionID != "" {
			if _, err := t.bindingByUnionID(ctx, id.CorpID, id.UnionID, noLock); err == nil {
				return Binding{}, false, conflict(ConflictUnionIDTaken, "")
			} else if !errors.Is(err, ErrNotFound) {
				return Binding{}, false, err
			}
		}
		return Binding{Identity: id}, false, nil
	case err != nil:
		return Binding{}, false, err
	case cur.Linked():
		return Binding{}, false, conflict(ConflictIdentityLinked, cur.AccountID)
	case cur.Disabled:
		return Binding{}, false, &DisabledError{Identity: true}
	}
	next, err := c.refresh(ctx, t, cur, id)
	return next, true, err
}

// linkForSignIn links cur (new or locked) to a as a successful sign-in: audited, with the
// open request closed and the last sign-in time set.
func (c *core) linkForSignIn(ctx context.Context, t tx, m Meta, cur Binding, exists bool, a Account, attr Attribute) (Binding, error) {
	cur.LastLoginAt = c.now()
	if !exists {
		return c.insertBinding(ctx, t, m, cur, &a, attr)
	}
	next := cur
	next.AccountID, next.Source = a.ID, m.Source
	next.UpdatedAt, next.Version = c.now(), cur.Version+1
	if err := t.updateBinding(ctx, next, &a); err != nil {
		return Binding{}, err
	}
	after := bindingAudit(next)
	if attr != "" {
		after = autoLinkAudit(next, attr)
	}
	if err := t.appendAudit(ctx, auditEvent(m, "identity.link", "identity", cur.Key().String(), bindingAudit(cur), after)); err != nil {
		return Binding{}, err
	}
	return next, c.settleRequest(ctx, t, m, cur.Key(), RequestClosed, a.ID, "")
}

// matchOf returns the account field that attr is matched against, and the identity's
// value in that field's form.
func matchOf(attr Attribute, id Identity) (matchField, string) {
	switch attr {
	case AttrJobNumber:
		return byUsername, NormalizeUsername(id.JobNumber)
	case AttrOrgEmail:
		return byEmailKey, emailKey(id.OrgEmail)
	default:
		return byPhoneKey, phoneKey(id.Mobile)
	}
}

func fieldMatches(a Account, f matchField, value string) bool {
	switch f {
	case byUsername:
		return a.Username == value
	case byEmailKey:
		return emailKey(a.Email) == value
	case byPhoneKey:
		return phoneKey(a.Phone) == value
	default:
		return a.DisplayName == value
	}
}

// activeAccounts returns up to two enabled accounts matching: enough to tell "exactly one".
func activeAccounts(ctx context.Context, t tx, f matchField, value string) ([]Account, error) {
	all, err := t.accountsWhere(ctx, f, value, 20)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(a Account) bool { return a.Disabled }), nil
}

// Provision implements Store.
func (c *core) Provision(ctx context.Context, m Meta, id Identity, a Account) (Binding, Account, error) {
	id = normalizeIdentity(id)
	if err := validateIdentity(id, true); err != nil {
		return Binding{}, Account{}, err
	}
	if err := validateMeta(m); err != nil {
		return Binding{}, Account{}, err
	}
	m.Source = SourceJIT
	var (
		b    Binding
		acct Account
	)
	err := c.db.write(ctx, func(t tx) error {
		cur, exists, err := c.prepareLink(ctx, t, id)
		if err != nil {
			return err
		}
		if acct, err = c.createAccount(ctx, t, m, a); err != nil {
			return err
		}
		b, err = c.linkForSignIn(ctx, t, m, cur, exists, acct, "")
		return err
	})
	if err != nil {
		return Binding{}, Account{}, fmt.Errorf("provision %s: %w", id.Key(), err)
	}
	return b, acct, nil
}

// RecordPending implements Store.
func (c *core) RecordPending(ctx context.Context, m Meta, id Identity) (Request, error) {
	id = normalizeIdentity(id)
	if err := validateIdentity(id, true); err != nil {
		return Request{}, err
	}
	if err := validateMeta(m); err != nil {
		return Request{}, err
	}
	m.Source = SourceLogin
	var r Request
	err := c.db.write(ctx, func(t tx) error {
		b, err := t.binding(ctx, id.Key(), lockUpdate)
		var suggest []string
		switch {
		case errors.Is(err, ErrNotFound):
			if b, suggest, err = c.recordIdentity(ctx, t, m, id); err != nil {
				return err
			}
		case err != nil:
			return err
		case b.Linked():
			return conflict(ConflictIdentityLinked, b.AccountID)
		case b.Disabled:
			return &DisabledError{Identity: true}
		default:
			next, err := c.refresh(ctx, t, b, id)
			if err != nil {
				return err
			}
			if err := t.updateBinding(ctx, next, nil); err != nil {
				return err
			}
			b = next
		}
		more, err := c.suggest(ctx, t, id)
		if err != nil {
			return err
		}
		suggest = dedupe(append(suggest, more...))
		if len(suggest) > maxSuggestions {
			suggest = suggest[:maxSuggestions]
		}
		r, err = c.openOrRefresh(ctx, t, m, b, suggest)
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("record pending request of %s: %w", id.Key(), err)
	}
	return r, nil
}

// recordIdentity creates an unlinked identity for a sign-in attempt. When another identity
// of the corp holds its unionId, the new row goes without one (the unique index says a
// unionId has one identity) and the other row's account becomes a suggestion.
func (c *core) recordIdentity(ctx context.Context, t tx, m Meta, id Identity) (Binding, []string, error) {
	var suggest []string
	if id.UnionID != "" {
		holder, err := t.bindingByUnionID(ctx, id.CorpID, id.UnionID, noLock)
		switch {
		case err == nil:
			id.UnionID = ""
			if holder.Linked() {
				suggest = append(suggest, holder.AccountID)
			}
		case !errors.Is(err, ErrNotFound):
			return Binding{}, nil, err
		}
	}
	b, err := c.insertBinding(ctx, t, m, Binding{Identity: id}, nil, "")
	return b, suggest, err
}

// suggest returns accounts an administrator may want to link id to: same job number (as
// username), org email, mobile or name. Hints only, so the personal email counts neither.
func (c *core) suggest(ctx context.Context, t tx, id Identity) ([]string, error) {
	var ids []string
	for _, q := range []struct {
		f     matchField
		value string
	}{
		{byUsername, NormalizeUsername(id.JobNumber)},
		{byEmailKey, emailKey(id.OrgEmail)},
		{byPhoneKey, phoneKey(id.Mobile)},
		{byDisplayName, id.Name},
	} {
		if q.value == "" {
			continue
		}
		as, err := t.accountsWhere(ctx, q.f, q.value, maxSuggestions)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			ids = append(ids, a.ID)
		}
	}
	return ids, nil
}

// openOrRefresh counts another attempt on the identity's open request, or opens one.
func (c *core) openOrRefresh(ctx context.Context, t tx, m Meta, b Binding, suggest []string) (Request, error) {
	now := c.now()
	if suggest == nil {
		suggest = []string{}
	}
	r, err := t.openRequest(ctx, b.Key())
	switch {
	case err == nil:
		r.Attempts++
		r.LastSeenAt, r.SuggestedAccountIDs = now, suggest
		if err := t.updateRequest(ctx, r); err != nil {
			return Request{}, err
		}
		r.Binding = b
		return r, nil
	case !errors.Is(err, ErrNotFound):
		return Request{}, err
	}
	r = Request{
		ID: NewID(), Key: b.Key(), Status: RequestOpen, Attempts: 1,
		FirstSeenAt: now, LastSeenAt: now, SuggestedAccountIDs: suggest, Binding: b,
	}
	if err := t.insertRequest(ctx, r); err != nil {
		return Request{}, err
	}
	return r, t.appendAudit(ctx, auditEvent(m, "request.open", "request", r.ID, nil, requestAudit(r)))
}
