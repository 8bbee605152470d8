package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// wsConn is a JSON-over-WebSocket connection with one reader goroutine. The server's
// WebSocket pings are answered by the library while it reads.
type wsConn struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	done     chan struct{}
	doneOnce sync.Once
	// Why the connection ended (read error, or close()).
	err error
}

func dialWS(rawURL, protocol string, timeout time.Duration) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	origin := "http://" + u.Host + "/"
	cfg, err := websocket.NewConfig(rawURL, origin)
	if err != nil {
		return nil, err
	}
	if protocol != "" {
		cfg.Protocol = []string{protocol}
	}
	cfg.Dialer = &net.Dialer{Timeout: timeout}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &wsConn{ws: ws, done: make(chan struct{})}, nil
}

// run reads messages until the connection ends, handing each to onMessage (in this goroutine).
func (c *wsConn) run(onMessage func([]byte)) {
	for {
		var msg []byte
		if err := websocket.Message.Receive(c.ws, &msg); err != nil {
			c.finish(err)
			return
		}
		onMessage(msg)
	}
}

func (c *wsConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return errors.New("connection closed")
	default:
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return websocket.Message.Send(c.ws, string(b))
}

func (c *wsConn) finish(err error) {
	c.doneOnce.Do(func() {
		c.err = err
		close(c.done)
	})
}

// close is idempotent.
func (c *wsConn) close() {
	c.finish(errors.New("closed"))
	_ = c.ws.Close()
}
