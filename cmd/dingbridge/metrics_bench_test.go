package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/idp"
)

// BenchmarkObserve is the cost of each observation on a hot path: a
// DingTalk call, a Postgres statement, a successful sign-in and an issued
// token. Each should be a few hundred nanoseconds at most and allocate
// little: they run on every request.
func BenchmarkObserve(b *testing.B) {
	m := newMetrics()
	o := newBridgeObserver(m, &eventsFunc{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	b.Run("dingtalk call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.observeDingTalkCall(dingtalk.Call{Endpoint: "/topapi/v2/user/get", Result: dingtalk.ResultOK, Duration: 30 * time.Millisecond})
		}
	})
	b.Run("store query", func(b *testing.B) {
		tr := queryTracer{m}
		start := pgx.TraceQueryStartData{SQL: "select id, username from accounts where id = $1"}
		b.ReportAllocs()
		for b.Loop() {
			tr.TraceQueryEnd(tr.TraceQueryStart(ctx, nil, start), nil, pgx.TraceQueryEndData{})
		}
	})
	b.Run("sign-in ok", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o.SignIn(ctx, idp.SignIn{Mode: "qr", Outcome: idp.OutcomeOK, CorpID: "dingcorp", Duration: 200 * time.Millisecond})
		}
	})
	b.Run("token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o.TokenRequest(ctx, idp.TokenRequest{GrantType: "authorization_code", ClientID: "wiki"})
		}
	})
}
