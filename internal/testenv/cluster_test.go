package testenv_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/testenv"
)

// TestRedisClusterForms: three nodes form one cluster that a cluster client
// writes to, keys spread over the masters.
func TestRedisClusterForms(t *testing.T) {
	addrs := testenv.NewRedisCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	ctx := context.Background()
	for i := range 30 {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters, holding atomic.Int32
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		masters.Add(1)
		if n, err := m.DBSize(ctx).Result(); err == nil && n > 0 {
			holding.Add(1)
		}
		return nil
	})
	if err != nil || masters.Load() != 3 || holding.Load() < 2 {
		t.Fatalf("%d masters, %d holding keys (%v)", masters.Load(), holding.Load(), err)
	}
}
