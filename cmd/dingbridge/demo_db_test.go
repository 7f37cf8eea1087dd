package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestDemoReusesItsDatabase: demo -database-url run a second time on the
// same database becomes ready and signs people in. With a new random
// key-encryption key per run, the second run could not decrypt the signing
// keys the first had stored, and stayed unready.
func TestDemoReusesItsDatabase(t *testing.T) {
	url := pgtest.NewDatabaseURL(t)
	for i := range 2 {
		t.Run(fmt.Sprintf("run %d", i+1), func(t *testing.T) {
			w := startSigninDemoOn(t, url)
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := http.Get(w.bridgeURL + "/healthz/ready")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready within 10s (last: %v, %v)", resp, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "zhangsan"); !strings.Contains(body, "张三") {
				t.Errorf("张三's sign-in did not reach the app:\n%s", body)
			}
		})
	}
}
