package mapping

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Audit actions of sign-ins that did not complete. The resolver writes signin.deny when
// it refuses an identity; the provider writes signin.fail when the DingTalk leg fails
// (DingTalk errors, an expired state). Both carry a "reason" code in their detail.
const (
	ActionSignInDeny = "signin.deny"
	ActionSignInFail = "signin.fail"
)

// Reasons the resolver records with signin.deny.
const (
	ReasonCorpNotAllowed   = "corp_not_allowed"
	ReasonIdentityDisabled = "identity_disabled"
	ReasonAccountDisabled  = "account_disabled"
	ReasonNotLinked        = "not_linked" // the person now waits in the pending queue
)

// StatsQuery asks for the overview's figures.
type StatsQuery struct {
	// SignedInSince counts identities whose last sign-in is at or after it: midnight in
	// the server's time zone gives "people who signed in today".
	SignedInSince time.Time
	// FailuresSince counts failed and refused sign-ins at or after it.
	FailuresSince time.Time
}

// Count is a number of records. Estimate marks a number that is the database's estimate,
// not a count: Postgres estimates what would take too long to count exactly (a count of a
// million rows reads a million rows); the Memory store always counts.
type Count struct {
	N        int64
	Estimate bool
}

// ReasonCount is how many failed sign-ins had one reason.
type ReasonCount struct {
	Reason string // "" when the event named none
	N      int64
}

// Stats are the overview's figures.
type Stats struct {
	Accounts     Count
	Identities   Count
	Linked       Count // identities linked to an account
	Unlinked     Count
	OpenRequests Count // pending requests waiting for an administrator
	SignIns      Count // identities that signed in since StatsQuery.SignedInSince
	// Failures are the signin.deny and signin.fail events since FailuresSince, by reason,
	// most frequent first.
	Failures []ReasonCount
}

// AuditTrail implements Store.
func (c *core) AuditTrail(ctx context.Context, q AuditQuery) (AuditPage, error) {
	f, err := parseAuditQuery(q)
	if err != nil {
		return AuditPage{}, err
	}
	limit := f.Limit
	f.Limit++
	var page AuditPage
	err = c.db.read(ctx, func(t tx) error {
		page.Events, err = t.auditEvents(ctx, f)
		return err
	})
	if err != nil {
		return AuditPage{}, fmt.Errorf("read audit trail: %w", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		page.Next = encodeCursor(fmt.Sprint(page.Events[limit-1].ID))
	}
	return page, nil
}

// Stats implements Store.
func (c *core) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	q.SignedInSince, q.FailuresSince = utc(q.SignedInSince), utc(q.FailuresSince)
	var st Stats
	err := c.db.read(ctx, func(t tx) error {
		var err error
		st, err = t.stats(ctx, q)
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("count for the overview: %w", err)
	}
	if len(st.Failures) == 0 {
		st.Failures = nil // both stores say "none" alike
	}
	sortReasons(st.Failures)
	return st, nil
}

// CountOpenRequests implements Store.
func (c *core) CountOpenRequests(ctx context.Context) (Count, error) {
	var n Count
	err := c.db.read(ctx, func(t tx) error {
		var err error
		n, err = t.countOpenRequests(ctx)
		return err
	})
	if err != nil {
		return Count{}, fmt.Errorf("count open requests: %w", err)
	}
	return n, nil
}

func sortReasons(rs []ReasonCount) {
	slices.SortFunc(rs, func(a, b ReasonCount) int { return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Reason, b.Reason)) })
}
