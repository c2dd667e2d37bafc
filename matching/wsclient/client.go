// Package wsclient is the Go client of Satu's websocket API, used by the
// demo, the tests and the CLI.
package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// Client is one websocket connection. Its methods are safe for concurrent use.
type Client struct {
	ws *websocket.Conn

	wmu sync.Mutex // serialises writes (one writer per connection)

	mu      sync.Mutex // guards next, pending, err
	next    uint64
	pending map[string]chan []byte // by request id: the raw answer
	err     error
	done    chan struct{}

	pushedOnce sync.Once
	pushed     chan json.RawMessage // made on first use: most connections never get one
	dropped    atomic.Uint64
	unmatched  atomic.Uint64
}

// PushedQueue is how many pushed messages (user data) a client keeps
// until they are read from Pushed; more are dropped, and counted.
const PushedQueue = 4096

// writeWait bounds a request's write when its context has no deadline:
// a server that stops reading cannot hold a caller (or Close) for ever.
const writeWait = 10 * time.Second

// ErrNotSent wraps the error of a call whose request never left: the
// connection had ended, or the write failed.
var ErrNotSent = errors.New("request not sent")

// Dial connects to a gateway, e.g. ws://127.0.0.1:8080/ws/api.
func Dial(ctx context.Context, url string) (*Client, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("wsclient: dial %s: %w", url, err)
	}
	c := &Client{ws: ws, pending: map[string]chan []byte{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Close closes the connection. It says goodbye with a close frame, sent
// as a control message (gorilla/websocket allows one beside a write in
// progress), so a writer stuck on a server that does not read cannot
// hold it; closing the socket then ends that writer too.
func (c *Client) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// Done is closed when the connection ends; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the error that ended the connection.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// readLoop hands each answer, undecoded, to the call waiting for its id,
// and pushed messages (no id) to Pushed. The answer is decoded once, by
// the call, into the caller's type: reading the envelope first and the
// result again had been half of the load generator's CPU.
func (c *Client) readLoop() {
	defer close(c.done)
	// A connection this loop no longer reads is closed: otherwise its pings
	// would go unanswered and the server's queue for it fill up.
	defer c.ws.Close()
	for {
		_, msg, err := c.ws.ReadMessage()
		var id []byte
		if err == nil {
			id, err = answerID(msg)
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			for _, ch := range c.pending {
				close(ch)
			}
			c.pending = nil
			c.mu.Unlock()
			return
		}
		if len(id) == 0 { // a pushed message: no request's answer
			select {
			case c.pushedQueue() <- msg:
			default:
				c.dropped.Add(1)
			}
			continue
		}
		if string(id) == "null" {
			// An answer the server could not tie to a request (one it
			// could not read): no call can be told; counted.
			c.unmatched.Add(1)
			continue
		}
		c.mu.Lock()
		ch := c.pending[string(id)]
		delete(c.pending, string(id))
		c.mu.Unlock()
		if ch != nil {
			ch <- msg
		}
	}
}

// answerID returns a message's id: read off the front when the message
// opens with it, as the gateway writes answers (wsapi.LeadingID), and
// otherwise by decoding the message (nil: no id, a pushed message).
func answerID(msg []byte) ([]byte, error) {
	if id := wsapi.LeadingID(msg); id != nil {
		return id, nil
	}
	var env struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(msg, &env); err != nil {
		return nil, err
	}
	return env.ID, nil
}

// Pushed delivers the messages the server pushes (user data after
// userDataStream.subscribe), in order.
func (c *Client) Pushed() <-chan json.RawMessage { return c.pushedQueue() }

func (c *Client) pushedQueue() chan json.RawMessage {
	c.pushedOnce.Do(func() { c.pushed = make(chan json.RawMessage, PushedQueue) })
	return c.pushed
}

// Unmatched is how many answers came with a null id — the server's
// answer to a request it could not read, or refused before reading — and
// so reached no call.
func (c *Client) Unmatched() uint64 { return c.unmatched.Load() }

// Dropped is how many pushed messages were dropped because Pushed was
// not read.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// Call sends a request and decodes the result into out (may be nil). An
// error response becomes an *apperr.Error with the server's code.
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	if out != nil && reflect.ValueOf(out).Kind() != reflect.Pointer {
		return fmt.Errorf("wsclient: %s: the result needs a pointer, not %T", method, out)
	}
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return fmt.Errorf("wsclient: connection closed: %w: %w", ErrNotSent, c.err)
	}
	c.next++
	id := strconv.FormatUint(c.next, 10)
	c.pending[id] = ch
	c.mu.Unlock()
	req := struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params any             `json:"params,omitempty"`
	}{json.RawMessage(id), method, params}
	b, err := json.Marshal(req)
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("wsclient: encode %s: %w", method, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(writeWait)
	}
	c.wmu.Lock()
	err = c.ws.SetWriteDeadline(deadline)
	if err == nil {
		err = c.ws.WriteMessage(websocket.TextMessage, b)
	}
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.mu.Unlock()
		return fmt.Errorf("wsclient: send %s: %w: %w", method, ErrNotSent, err)
	}
	select {
	case msg, ok := <-ch:
		if !ok {
			return fmt.Errorf("wsclient: connection closed: %w", c.Err())
		}
		// One pass: the result is decoded straight into out (an interface
		// holding a pointer is decoded into what it points to).
		var ignore json.RawMessage
		resp := struct {
			Status int           `json:"status"`
			Result any           `json:"result"`
			Error  *apperr.Error `json:"error"`
		}{Result: out}
		if out == nil {
			resp.Result = &ignore
		}
		if err := json.Unmarshal(msg, &resp); err != nil {
			return fmt.Errorf("wsclient: decode the answer to %s: %w", method, err)
		}
		if resp.Error != nil {
			return resp.Error
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// lastSigned is, per API key, the last timestamp (Unix ms) this process
// signed a request with.
var lastSigned sync.Map // API key → *atomic.Int64

// signingTime is the local time to sign a request of apiKey at — or, when
// this process already signed one of that key in that millisecond or
// later, the millisecond after the last. A signature covers the
// parameters and the millisecond, so two requests of one key with the same
// parameters in one millisecond (two logons of one account on two
// connections, say) would be one request twice to the gateway, and the
// second refused as a replay. A burst runs ahead of the clock by at most
// maxSignAhead, then waits for it: the gateway refuses timestamps more
// than a second ahead of its own (access.MaxClockAhead).
func signingTime(apiKey string) time.Time {
	v, _ := lastSigned.LoadOrStore(apiKey, new(atomic.Int64))
	last := v.(*atomic.Int64)
	for {
		now := time.Now()
		ms, prev := now.UnixMilli(), last.Load()
		if ms <= prev {
			if prev+1-ms > maxSignAhead.Milliseconds() {
				time.Sleep(time.Millisecond)
				continue
			}
			ms, now = prev+1, time.UnixMilli(prev+1)
		}
		if last.CompareAndSwap(prev, ms) {
			return now
		}
	}
}

// maxSignAhead is how far ahead of the clock signingTime may go.
const maxSignAhead = 500 * time.Millisecond

// Logon signs session.logon with signer at the local time: the session
// then acts for the key's account, or for account (one of the key's; ""
// when the key acts for exactly one).
func (c *Client) Logon(ctx context.Context, signer access.Signer, account string) (wsapi.LogonResult, error) {
	var r wsapi.LogonResult
	params, err := signer.Sign(wsapi.MethodLogon, wsapi.LogonParams{Account: account}, signingTime(signer.APIKey))
	if err != nil {
		return r, err
	}
	err = c.Call(ctx, wsapi.MethodLogon, params, &r)
	return r, err
}

// Signed sends one request signed with signer at the local time, without
// a session: it acts as the key (which must act for one account).
func (c *Client) Signed(ctx context.Context, signer access.Signer, method string, params, out any) error {
	signed, err := signer.Sign(method, params, signingTime(signer.APIKey))
	if err != nil {
		return err
	}
	return c.Call(ctx, method, signed, out)
}

// Place places an order.
func (c *Client) Place(ctx context.Context, p wsapi.PlaceParams) (wsapi.OrderResult, error) {
	var r wsapi.OrderResult
	err := c.Call(ctx, wsapi.MethodPlace, p, &r)
	return r, err
}

// Cancel cancels an order.
func (c *Client) Cancel(ctx context.Context, p wsapi.CancelParams) (wsapi.OrderResult, error) {
	var r wsapi.OrderResult
	err := c.Call(ctx, wsapi.MethodCancel, p, &r)
	return r, err
}

// PlaceBatch places up to wsapi.MaxBatchOrders orders in one request; each
// has its own outcome in the result, in the order given.
func (c *Client) PlaceBatch(ctx context.Context, orders []wsapi.PlaceParams) (wsapi.BatchResult, error) {
	var r wsapi.BatchResult
	err := c.Call(ctx, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: orders}, &r)
	return r, err
}

// CancelBatch cancels up to wsapi.MaxBatchOrders orders in one request.
func (c *Client) CancelBatch(ctx context.Context, orders []wsapi.CancelParams) (wsapi.BatchResult, error) {
	var r wsapi.BatchResult
	err := c.Call(ctx, wsapi.MethodBatchCancel, wsapi.BatchCancelParams{Orders: orders}, &r)
	return r, err
}
