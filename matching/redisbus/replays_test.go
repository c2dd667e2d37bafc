package redisbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching/redisbus"
)

func TestReplaysRememberUntilTheTTL(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	ctx := context.Background()
	r := redisbus.NewReplays(rdb)
	id := ns + ":key:sig"
	for i, want := range []bool{true, false, false} {
		first, err := r.FirstUse(ctx, id, 300*time.Millisecond)
		if err != nil || first != want {
			t.Fatalf("use %d: %v, %v; want %v", i+1, first, err, want)
		}
	}
	if first, err := r.FirstUse(ctx, ns+":key:other", time.Second); err != nil || !first {
		t.Fatalf("another signature: %v, %v", first, err)
	}
	ttl, err := rdb.PTTL(ctx, "satu:replay:"+id).Result()
	if err != nil || ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("the memory expires in %v (%v), want within 300ms", ttl, err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if first, err := r.FirstUse(ctx, id, time.Second); err != nil || !first {
		t.Fatalf("after the TTL: %v, %v", first, err)
	}
}
