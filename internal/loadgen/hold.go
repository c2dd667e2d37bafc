package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// idleSet is the idle logged-on connections of a run.
type idleSet struct{ conns []*wsclient.Client }

// holdIdle opens cfg.Idle accounts, each with its own key and a logged-on
// connection that then says nothing (the gateway's pings keep it alive).
func holdIdle(ctx context.Context, rest *demo.Client, cfg Config, run string, progress io.Writer) (*idleSet, error) {
	s := &idleSet{conns: make([]*wsclient.Client, cfg.Idle)}
	if cfg.Idle == 0 {
		return s, nil
	}
	fmt.Fprintf(progress, "satu load: opening %d idle logged-on connections\n", cfg.Idle)
	err := parallel(ctx, cfg.Idle, 32, func(ctx context.Context, i int) error {
		ws, err := account(ctx, rest, fmt.Sprintf("idle-%s-%d", run, i), func(context.Context) error { return nil })
		s.conns[i] = ws
		return err
	})
	return s, err
}

// count returns how many idle connections are open and how many the server closed.
func (s *idleSet) count() (open, lost int) {
	for _, c := range s.conns {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			lost++
		default:
			open++
		}
	}
	return open, lost
}

func (s *idleSet) close() {
	for _, c := range s.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// SubscriberReport is what the stream subscribers saw.
type SubscriberReport struct {
	N         int   // subscribers
	Messages  int64 // messages received, all subscribers
	MinMsgs   int64 // the fewest any subscriber received
	Depth     int64 // depth updates checked, all subscribers
	Levels    int64 // level changes in them, all subscribers
	Malformed int64 // messages that could not be decoded
	Gaps      int64 // depth updates whose U did not continue the previous u
	Closed    int   // subscribers the server closed during the run
	Reasons   map[string]int
}

// subscriber is one stream connection that checks depth chaining.
type subscriber struct {
	ws        *websocket.Conn
	messages  atomic.Int64
	depth     atomic.Int64 // depth updates, each checked against the one before
	levels    atomic.Int64 // level changes in them
	malformed atomic.Int64 // messages that are not the JSON expected
	gaps      atomic.Int64
	closed    atomic.Bool
	reason    atomic.Value // string
	done      chan struct{}
}

type subscriberSet struct {
	subs []*subscriber
	stop atomic.Bool
}

// subscribe opens n connections to stream.
func subscribe(ctx context.Context, addr, stream string, n int) (*subscriberSet, error) {
	set := &subscriberSet{subs: make([]*subscriber, n)}
	if n == 0 {
		return set, nil
	}
	u := "ws://" + addr + "/ws/stream?streams=" + url.QueryEscape(stream)
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			if resp != nil {
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return fmt.Errorf("subscribe %s: HTTP %d %s", stream, resp.StatusCode, b)
			}
			return fmt.Errorf("subscribe %s: %w", stream, err)
		}
		s := &subscriber{ws: ws, done: make(chan struct{})}
		set.subs[i] = s
		go s.read(&set.stop)
		return nil
	})
	return set, err
}

// read counts messages and checks that each depth update starts where the
// one before of the same stream ended (U = previous u + 1; a connection
// may follow several streams). It reads only what it checks — a
// thousand subscribers decoding every message in full would measure the
// load generator, not the server — and counts a depth update without its
// U and u as undecodable.
func (s *subscriber) read(stop *atomic.Bool) {
	defer close(s.done)
	last := map[string]uint64{} // by stream
	for {
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			if !stop.Load() {
				s.closed.Store(true)
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.reason.Store(fmt.Sprintf("%d %s", ce.Code, ce.Text))
				} else {
					s.reason.Store(err.Error())
				}
			}
			return
		}
		s.messages.Add(1)
		if !bytes.Contains(b, []byte(`"e":"depthUpdate"`)) {
			continue
		}
		first, ok1 := number(b, `"U":`)
		upto, ok2 := number(b, `"u":`)
		if !ok1 || !ok2 || !bytes.HasSuffix(b, []byte("}}")) {
			s.malformed.Add(1)
			continue
		}
		s.depth.Add(1)
		s.levels.Add(int64(bytes.Count(b, []byte(`["`))))
		stream := streamOf(b)
		if prev, ok := last[string(stream)]; ok && first != prev+1 {
			s.gaps.Add(1)
		}
		last[string(stream)] = upto
	}
}

// streamOf is the name a combined-stream message starts with,
// {"stream":"<name>", (nil for any other message).
func streamOf(b []byte) []byte {
	const head = `{"stream":"`
	if !bytes.HasPrefix(b, []byte(head)) {
		return nil
	}
	b = b[len(head):]
	if i := bytes.IndexByte(b, '"'); i >= 0 {
		return b[:i]
	}
	return nil
}

// number reads the unsigned integer after key in b.
func number(b []byte, key string) (uint64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n, digits := uint64(0), 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		n = n*10 + uint64(b[digits]-'0')
	}
	return n, digits > 0
}

func (set *subscriberSet) report() SubscriberReport {
	r := SubscriberReport{N: len(set.subs), Reasons: map[string]int{}}
	for i, s := range set.subs {
		if s == nil {
			continue
		}
		n := s.messages.Load()
		r.Messages += n
		if i == 0 || n < r.MinMsgs {
			r.MinMsgs = n
		}
		r.Gaps += s.gaps.Load()
		r.Depth += s.depth.Load()
		r.Levels += s.levels.Load()
		r.Malformed += s.malformed.Load()
		if s.closed.Load() {
			r.Closed++
			reason, _ := s.reason.Load().(string)
			r.Reasons[reason]++
		}
	}
	return r
}

func (set *subscriberSet) close() {
	set.stop.Store(true)
	var wg sync.WaitGroup
	for _, s := range set.subs {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			_ = s.ws.Close()
			<-s.done
		}()
	}
	wg.Wait()
}
