package wsgateway

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkConn is a connection's socket with a switch that gathers writes: while
// corked, what the websocket library writes is kept and uncork sends it in
// one system call. The write loop corks while it drains its queue, so a burst
// of responses leaves in one write instead of one write per message.
//
// Lock: mu guards corked and buf; it is held during the socket write of
// uncork and of an uncorked write, so frames never interleave. It is taken
// inside the websocket library's own write lock and takes nothing else.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// maxCorked bounds what one uncork sends; the write loop stops gathering
// beyond it.
const maxCorked = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// gathered is how many bytes wait for uncork.
func (c *corkConn) gathered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

// uncork sends what was gathered, under the write deadline set before.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 4<<10 { // an idle connection keeps no large buffer
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkWriter hands the websocket upgrade a socket wrapped in a corkConn.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn // set by Hijack
}

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	return w.conn, brw, nil
}
