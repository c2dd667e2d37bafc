package wsgateway

import (
	"testing"

	"github.com/satu-exchange/satu/internal/access"
)

// TestUserSubsOncePerKeyAndAccount: signed userDataStream.subscribe
// requests repeated on one connection — each a session of its own — are
// noted once per key and account, not once per request.
func TestUserSubsOncePerKeyAndAccount(t *testing.T) {
	c := &conn{}
	signed := func(key, account string) *session {
		return &session{principal: access.Principal{KeyID: key}, account: account}
	}
	for range 100 {
		c.followedUnder(signed("k1", "a1"))
	}
	c.followedUnder(signed("k1", "a2"))
	c.followedUnder(signed("k2", "a1"))
	if len(c.userSubs) != 3 {
		t.Fatalf("%d sessions noted; want 3 (k1/a1, k1/a2, k2/a1)", len(c.userSubs))
	}
}
