package sharedlimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// BenchmarkWait measures what the shared limit adds to one DingTalk call
// when a turn is free: Wait and done against a real Postgres, with the
// round trips they take. The fake clock moves two windows per rate calls,
// so the slots turn over as at half the rate and no call waits for a turn:
// the figure is the limiter's own cost. (An answer recorded a statement or
// two late can still make a call wait a little on that fast clock, which
// waits/op counts.) The 32callers case is a busy replica, 32 sign-ins at
// once: turns are taken, and answers recorded, in batches. Only the rate
// of 1000 has a slot for each of them.
//
//	go test -run '^$' -bench Wait -benchtime 2000x ./dingtalk/sharedlimit/
func BenchmarkWait(b *testing.B) {
	for _, bc := range []struct {
		name    string
		rate    float64
		callers int // 0: b.RunParallel's goroutines
	}{{"rate20/serial", 20, 1}, {"rate20/parallel", 20, 0}, {"rate1000/serial", 1000, 1}, {"rate1000/parallel", 1000, 0}, {"rate1000/32callers", 1000, 32}} {
		b.Run(bc.name, func(b *testing.B) {
			pc, err := pgxpool.ParseConfig(pgtest.NewDatabaseURL(b))
			if err != nil {
				b.Fatal(err)
			}
			tracer := &statements{}
			pc.ConnConfig.Tracer = tracer
			pool, err := pgxpool.NewWithConfig(b.Context(), pc)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			clk := &fakeClock{now: testNow}
			// A wait, were there one, would move the fake clock, not take
			// real time: it is counted instead.
			sl := &sleeper{clock: clk}
			p, err := NewPostgres(Config{Pool: pool, Rate: bc.rate, Now: clk.Now, Sleep: sl.Sleep})
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
			if bc.callers == 0 {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
			} else {
				var left atomic.Int64
				left.Store(int64(b.N))
				var wg sync.WaitGroup
				for range bc.callers {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							call()
						}
					})
				}
				wg.Wait()
			}
			p.Flush() // the answers still queued are part of the cost
			b.ReportMetric(float64(tracer.n.Load())/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(len(sl.Waits()))/float64(b.N), "waits/op")
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
