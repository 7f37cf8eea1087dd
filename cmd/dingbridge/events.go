package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/mapping"
)

// eventsPath is where DingTalk pushes a corp's contact events (HTTP push
// mode); configure https://<issuer>/dingtalk/events/<corp id> in the
// DingTalk developer console with the corp's events.token and aes_key.
const eventsPath = "/dingtalk/events/{corpID}"

// disabler is what the event glue needs from the mapping.
type disabler interface {
	SetBindingDisabled(ctx context.Context, m mapping.Meta, k mapping.Key, disabled bool) (mapping.Binding, error)
}

// sessionEnder ends what a person who left is still signed in to: the
// provider's sessions of their identity (idp.Provider.EndDingTalkSessions)
// and the console sessions of its account (web.Server.EndAccountSessions).
// Either may be nil.
type sessionEnder struct {
	provider interface {
		EndDingTalkSessions(ctx context.Context, corpID, userID string) (int, error)
	}
	console interface {
		EndAccountSessions(ctx context.Context, accountID string)
	}
}

// mountEvents serves DingTalk's event callbacks for every corp that has an
// events token, turning user_leave_org into a disabled identity so that
// people who leave stop signing in at once, and ending the sessions they
// are signed in with, so that they are not signed in anywhere either.
// Re-joining is not undone automatically: an administrator re-enables the
// identity.
func mountEvents(r chi.Router, cfg *Config, store disabler, end sessionEnder, logger *slog.Logger) error {
	handlers := map[string]http.Handler{}
	for i, corp := range cfg.Corps {
		if corp.Events.Token == "" {
			continue
		}
		// Console-configured subscriptions sign with the app key as owner key.
		crypto, err := dingtalk.NewCallbackCrypto(corp.Events.Token, corp.Events.AESKey, corp.AppKey)
		if err != nil {
			return fmt.Errorf("corps[%d].events: %w", i, err)
		}
		handlers[corp.ID] = dingtalk.NewCallbackHandler(crypto, leaveHandler(corp.ID, store, end, logger), logger)
	}
	if len(handlers) == 0 {
		return nil
	}
	r.Post(eventsPath, func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[chi.URLParam(r, "corpID")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
	return nil
}

// leaveHandler disables the identities of the users an event says left,
// and ends their sessions.
func leaveHandler(corpID string, store disabler, end sessionEnder, logger *slog.Logger) func(context.Context, dingtalk.Event) error {
	return func(ctx context.Context, e dingtalk.Event) error {
		if e.Type != "user_leave_org" {
			return nil
		}
		if e.CorpID != "" && e.CorpID != corpID {
			return fmt.Errorf("event for corp %s arrived at corp %s's address", e.CorpID, corpID)
		}
		m := mapping.Meta{Actor: "dingtalk", Source: mapping.SourceSync, RequestID: requestIDFrom(ctx)}
		var errs []error
		for _, userID := range e.UserIDs {
			b, err := store.SetBindingDisabled(ctx, m, mapping.Key{CorpID: corpID, UserID: userID}, true)
			switch {
			case errors.Is(err, mapping.ErrNotFound):
				// Never signed in and never linked: nothing to disable.
				continue
			case err != nil:
				errs = append(errs, err)
				continue
			}
			logger.InfoContext(ctx, "identity disabled: left the corp", "corp_id", corpID, "user_id", userID)
			// A retried push (after an error below) disables again, which
			// changes nothing, and ends whatever is still open.
			if end.provider != nil {
				if _, err := end.provider.EndDingTalkSessions(ctx, corpID, userID); err != nil {
					errs = append(errs, err)
				}
			}
			if end.console != nil && b.AccountID != "" {
				end.console.EndAccountSessions(ctx, b.AccountID)
			}
		}
		// An error makes DingTalk retry the push (10 s, then 30 s).
		return errors.Join(errs...)
	}
}
