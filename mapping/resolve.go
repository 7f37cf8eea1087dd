package mapping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/template"
)

// ResolverStore is what the Resolver needs of a Store.
type ResolverStore interface {
	RecordSignIn(ctx context.Context, id Identity) (Binding, *Account, error)
	AutoLink(ctx context.Context, m Meta, id Identity, attr Attribute) (Binding, Account, error)
	Provision(ctx context.Context, m Meta, id Identity, a Account) (Binding, Account, error)
	RecordPending(ctx context.Context, m Meta, id Identity) (Request, error)
	RecordEvent(ctx context.Context, m Meta, e Event) error
}

// Corp is one configured DingTalk corp and the optional rules for its identities that
// no explicit link covers. Both rules are off unless set.
type Corp struct {
	ID string
	// AutoLink links an identity to the one active account whose matching field equals
	// this directory attribute (job number = username, org email = email, mobile =
	// phone), if exactly one matches and it has no identity in this corp yet. Empty: off.
	AutoLink Attribute
	// JIT creates an account for an identity that nothing else links.
	JIT JIT
}

// JIT configures just-in-time provisioning.
type JIT struct {
	// Username is a text/template over Profile that makes the new account's username,
	// e.g. "{{.JobNumber}}" or "{{.OrgEmailLocal}}". Empty: JIT is off. The result is
	// lower-cased; if it is empty, not a valid username, or taken, the person gets a
	// pending request instead (a taken username may be the same person: an administrator
	// decides).
	Username string
	// Groups are the new account's groups.
	Groups []string
	// TrustOrgEmail marks the org email, which the corp assigns, as verified.
	TrustOrgEmail bool
}

// Profile is what a JIT username template sees.
type Profile struct {
	CorpID, UserID, Name, JobNumber, Mobile, OrgEmail string
	OrgEmailLocal                                     string // the org email before the @
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	Store ResolverStore
	// Corps is the allowlist: identities of any other corp never resolve (BR-07).
	Corps  []Corp
	Logger *slog.Logger // slog.Default() when nil
}

// Resolver decides which account a DingTalk identity is, in the order DESIGN.md gives:
// the identity's row by (corp, userId), else (corp, unionId); refused if the identity or
// its account is disabled; otherwise the corp's auto-link rule, then its JIT rule, then a
// pending request and ErrNotLinked.
type Resolver struct {
	store  ResolverStore
	corps  map[string]corpRules
	logger *slog.Logger
}

type corpRules struct {
	Corp
	username *template.Template // nil: JIT off
}

// Actors that the resolver's audit rows name.
const (
	ActorAuto   = "auto"   // auto-link
	ActorJIT    = "jit"    // just-in-time provisioning
	ActorLogin  = "login"  // identities and requests recorded by sign-in attempts
	ActorSystem = "system" // refusals
)

// maxResolveAttempts bounds retries when a concurrent change (another replica linking
// the same identity) makes a step's premise false.
const maxResolveAttempts = 3

// NewResolver checks cfg and returns a Resolver.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Store == nil {
		return nil, errors.New("mapping: resolver needs a store")
	}
	r := &Resolver{store: cfg.Store, corps: map[string]corpRules{}, logger: cfg.Logger}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	var errs []error
	for i, c := range cfg.Corps {
		switch {
		case !idPattern.MatchString(c.ID):
			errs = append(errs, fmt.Errorf("corps[%d].id: %q is not a corp id", i, c.ID))
			continue
		case r.corps[c.ID].ID != "":
			errs = append(errs, fmt.Errorf("corps[%d].id: %q is configured twice", i, c.ID))
		case c.AutoLink != "" && !c.AutoLink.valid():
			errs = append(errs, fmt.Errorf("corps[%d].auto_link: must be job_number, org_email or mobile (never the personal email or nick); got %q", i, c.AutoLink))
		}
		rules := corpRules{Corp: c}
		if c.JIT.Username != "" {
			t, err := template.New("username").Option("missingkey=error").Parse(c.JIT.Username)
			if err == nil {
				err = t.Execute(&bytes.Buffer{}, Profile{})
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("corps[%d].jit.username: %v", i, err))
			}
			rules.username = t
		}
		r.corps[c.ID] = rules
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mapping: resolver configuration: %w", err)
	}
	return r, nil
}

// Resolve returns the account of a DingTalk identity, or an error matching:
//   - ErrCorpNotAllowed: the corp is not configured (audited);
//   - ErrDisabled: the identity or its account is disabled (*DisabledError says which);
//   - ErrNotLinked: nothing links it yet; a *NotLinkedError names the pending request;
//   - ErrInvalid: the identity is malformed.
//
// m carries the request id and client IP for the audit trail; the resolver sets the actor.
// A successful resolve refreshes the identity's profile snapshot and last sign-in time.
func (r *Resolver) Resolve(ctx context.Context, id Identity, m Meta) (Account, error) {
	id = normalizeIdentity(id)
	rules, ok := r.corps[id.CorpID]
	if !ok {
		r.deny(ctx, m, id, ReasonCorpNotAllowed, map[string]string{"corp_id": id.CorpID})
		return Account{}, fmt.Errorf("corp %q: %w", id.CorpID, ErrCorpNotAllowed)
	}
	if err := validateIdentity(id, false); err != nil {
		return Account{}, err
	}
	var err error
	for range maxResolveAttempts {
		var a Account
		a, err = r.resolve(ctx, rules, id, m)
		// A conflict means another replica changed this identity between two of our
		// steps (linked it, recorded it): look again.
		if !errors.Is(err, ErrConflict) {
			r.auditRefusal(ctx, m, id, err)
			return a, err
		}
	}
	return Account{}, err
}

// auditRefusal records a disabled or not-linked outcome as signin.deny, so that the
// overview can count refused sign-ins by reason.
func (r *Resolver) auditRefusal(ctx context.Context, m Meta, id Identity, err error) {
	var (
		de *DisabledError
		nl *NotLinkedError
	)
	switch {
	case errors.As(err, &de) && de.Identity:
		r.deny(ctx, m, id, ReasonIdentityDisabled, map[string]string{"account_disabled": fmt.Sprint(de.Account)})
	case errors.As(err, &de):
		r.deny(ctx, m, id, ReasonAccountDisabled, nil)
	case errors.As(err, &nl):
		r.deny(ctx, m, id, ReasonNotLinked, map[string]string{"request_id": nl.RequestID})
	}
}

// deny appends a signin.deny row about the identity. A failure to write it is logged,
// not returned: the person's answer does not depend on it.
func (r *Resolver) deny(ctx context.Context, m Meta, id Identity, reason string, detail map[string]string) {
	d := map[string]string{"reason": reason}
	for k, v := range detail {
		d[k] = v
	}
	m.Actor = ActorSystem
	err := r.store.RecordEvent(ctx, m, Event{Action: ActionSignInDeny, TargetType: "identity", TargetID: id.Key().String(), Detail: d})
	if err != nil {
		r.logger.ErrorContext(ctx, "audit refused sign-in", "corp_id", id.CorpID, "reason", reason, "err", err)
	}
}

func (r *Resolver) resolve(ctx context.Context, rules corpRules, id Identity, m Meta) (Account, error) {
	b, a, err := r.store.RecordSignIn(ctx, id)
	switch {
	case err == nil && b.Linked():
		if b.Disabled || a.Disabled {
			return Account{}, &DisabledError{Identity: b.Disabled, Account: a.Disabled}
		}
		return *a, nil
	case err == nil && b.Disabled:
		return Account{}, &DisabledError{Identity: true}
	case err != nil && !errors.Is(err, ErrNotFound):
		return Account{}, err
	}
	if id.UserID == "" {
		// Without a userId there is no key to record a request under.
		return Account{}, &NotLinkedError{}
	}
	if id.Active && rules.AutoLink != "" {
		m.Actor = ActorAuto
		_, a, err := r.store.AutoLink(ctx, m, id, rules.AutoLink)
		switch {
		case err == nil:
			r.logger.InfoContext(ctx, "auto-linked", "corp_id", id.CorpID, "user_id", id.UserID, "account_id", a.ID, "attribute", string(rules.AutoLink))
			return a, nil
		case errors.Is(err, ErrNotFound) || isConflict(err, ConflictUnionIDTaken):
			// No single match, or the unionId is another row's: an administrator decides.
		default:
			// Other conflicts (linked or recorded meanwhile) make Resolve start again.
			return Account{}, err
		}
	}
	if id.Active && rules.username != nil {
		if a, done, err := r.provision(ctx, rules, id, m); done {
			return a, err
		}
	}
	m.Actor = ActorLogin
	req, err := r.store.RecordPending(ctx, m, id)
	if err != nil {
		return Account{}, err
	}
	return Account{}, &NotLinkedError{RequestID: req.ID}
}

// provision tries JIT; done is false when the person should get a pending request
// instead.
func (r *Resolver) provision(ctx context.Context, rules corpRules, id Identity, m Meta) (a Account, done bool, err error) {
	local, _, _ := strings.Cut(id.OrgEmail, "@")
	var buf bytes.Buffer
	err = rules.username.Execute(&buf, Profile{
		CorpID: id.CorpID, UserID: id.UserID, Name: id.Name, JobNumber: id.JobNumber,
		Mobile: id.Mobile, OrgEmail: id.OrgEmail, OrgEmailLocal: local,
	})
	username := NormalizeUsername(buf.String())
	if err != nil || !usernamePattern.MatchString(username) {
		r.logger.WarnContext(ctx, "JIT username template gives no valid username; recording a pending request",
			"corp_id", id.CorpID, "user_id", id.UserID, "username", username, "err", err)
		return Account{}, false, nil
	}
	m.Actor = ActorJIT
	_, a, err = r.store.Provision(ctx, m, id, Account{
		Username:      username,
		DisplayName:   id.Name,
		Email:         id.OrgEmail,
		EmailVerified: rules.JIT.TrustOrgEmail && id.OrgEmail != "",
		Phone:         id.Mobile,
		Groups:        rules.JIT.Groups,
	})
	switch {
	case err == nil:
		r.logger.InfoContext(ctx, "provisioned", "corp_id", id.CorpID, "user_id", id.UserID, "account_id", a.ID)
		return a, true, nil
	case isConflict(err, ConflictUsernameTaken) || isConflict(err, ConflictUnionIDTaken) || errors.Is(err, ErrInvalid):
		r.logger.InfoContext(ctx, "JIT not possible; recording a pending request", "corp_id", id.CorpID, "user_id", id.UserID, "err", err)
		return Account{}, false, nil
	}
	return Account{}, true, err
}

func isConflict(err error, reason Conflict) bool {
	var ce *ConflictError
	return errors.As(err, &ce) && ce.Reason == reason
}

// IdentityByUnionID returns the identity stored under (corp, unionId), without recording
// anything, so that a sign-in can skip DingTalk's unionId → userId lookup for identities
// the mapping already knows. The caller compares AppKey (BR-08). ErrNotFound when there is
// none, or when the store cannot look identities up.
func (r *Resolver) IdentityByUnionID(ctx context.Context, corpID, unionID string) (Binding, error) {
	s, ok := r.store.(interface {
		BindingByUnionID(ctx context.Context, corpID, unionID string) (Binding, error)
	})
	if !ok {
		return Binding{}, ErrNotFound
	}
	return s.BindingByUnionID(ctx, corpID, unionID)
}
