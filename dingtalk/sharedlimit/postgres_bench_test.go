package sharedlimit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// countingTracer counts the statements sent to Postgres: each is one round
// trip.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// BenchmarkWait measures what the shared limit adds to one DingTalk call
// when a turn is free: Wait and done against a real Postgres, with the
// round trips they take. The fake clock moves two windows per rate calls,
// so the slots turn over as at half the rate and no call waits for a turn:
// the figure is the limiter's own cost.
//
//	go test -run '^$' -bench Wait -benchtime 2000x ./dingtalk/sharedlimit/
func BenchmarkWait(b *testing.B) {
	for _, bc := range []struct {
		name     string
		rate     float64
		parallel bool
	}{{"rate20/serial", 20, false}, {"rate20/parallel", 20, true}, {"rate1000/serial", 1000, false}, {"rate1000/parallel", 1000, true}} {
		b.Run(bc.name, func(b *testing.B) {
			pc, err := pgxpool.ParseConfig(pgtest.NewDatabaseURL(b))
			if err != nil {
				b.Fatal(err)
			}
			tracer := &countingTracer{}
			pc.ConnConfig.Tracer = tracer
			pool, err := pgxpool.NewWithConfig(b.Context(), pc)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			clk := &fakeClock{now: testNow}
			p, err := NewPostgres(Config{Pool: pool, Rate: bc.rate, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			_, w := p.Window()
			l := p.App(testApp)
			call := func() {
				done, err := l.Wait(b.Context(), testEndpoint)
				if err != nil {
					b.Error(err)
					return
				}
				clk.Advance(2 * w / time.Duration(bc.rate))
				done()
			}
			call() // creates the slots
			tracer.n.Store(0)
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
			} else {
				for range b.N {
					call()
				}
			}
			b.ReportMetric(float64(tracer.n.Load())/float64(b.N), "roundtrips/op")
		})
	}
}

// BenchmarkRoundTrip is the yardstick for BenchmarkWait: one bare
// statement on the same kind of pool.
func BenchmarkRoundTrip(b *testing.B) {
	pool := pgtest.NewDatabase(b)
	for b.Loop() {
		if _, err := pool.Exec(b.Context(), "select 1"); err != nil {
			b.Fatal(err)
		}
	}
}
