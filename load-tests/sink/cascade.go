package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// Cascade's signalling (protocol/src/envelope.ts, messages.ts): `{v, id, type, data}`
// requests, `{v, id, ok, data|error}` responses, `{v, type, data}` notifications.
const protocolVersion = 1

const twccURI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

type envelope struct {
	V     int             `json:"v"`
	ID    json.RawMessage `json:"id,omitempty"`
	Type  string          `json:"type,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	OK    *bool           `json:"ok,omitempty"`
	Error *wireError      `json:"error,omitempty"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// codedError carries a Cascade error code (the server's, or CASCADE_ERR_LOADTEST_* of ours).
type codedError struct{ code, msg string }

func (e *codedError) Error() string { return e.code + ": " + e.msg }

func asWire(err error) *wireError {
	var c *codedError
	if errors.As(err, &c) {
		return &wireError{Code: c.code, Message: c.msg}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &wireError{Code: "CASCADE_ERR_LOADTEST_JOIN_TIMEOUT", Message: "the join did not complete in time"}
	}
	return &wireError{Code: "CASCADE_ERR_CLIENT_CONNECTION", Message: err.Error()}
}

// signallingURL is protocol/src/url.ts signallingUrl(base, '/ws').
func signallingURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme == "https" || u.Scheme == "wss" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = "/ws"
	u.RawQuery = fmt.Sprintf("v=%d", protocolVersion)
	return u.String(), nil
}

const maxRedirects = 3

type cascadeSignal struct {
	v      *viewer
	mu     sync.Mutex
	ws     *wsConn
	nextID int
	calls  map[int]chan envelope
	// The last ping's id while unanswered, and when the next one is due.
	pingID   int
	nextPing int64
	missed   int64
	closed   bool
	joined   bool
}

func newCascadeSignal(v *viewer) *cascadeSignal {
	return &cascadeSignal{v: v, calls: map[int]chan envelope{}}
}

func (s *cascadeSignal) request(ctx context.Context, typ string, data any) (json.RawMessage, error) {
	s.mu.Lock()
	ws := s.ws
	s.nextID++
	id := s.nextID
	ch := make(chan envelope, 1)
	s.calls[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
	}()
	if err := ws.send(map[string]any{"v": protocolVersion, "id": id, "type": typ, "data": data}); err != nil {
		return nil, &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: typ + ": " + err.Error()}
	}
	select {
	case env := <-ch:
		if env.OK != nil && *env.OK {
			return env.Data, nil
		}
		if env.Error != nil {
			return nil, &codedError{code: env.Error.Code, msg: env.Error.Message}
		}
		return nil, &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: typ + ": bad response"}
	case <-ws.done:
		return nil, &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: typ + ": signalling closed"}
	case <-ctx.Done():
		return nil, &codedError{code: "CASCADE_ERR_LOADTEST_JOIN_TIMEOUT", msg: typ + ": no answer in time"}
	}
}

func (s *cascadeSignal) onMessage(raw []byte) {
	var env envelope
	if json.Unmarshal(raw, &env) != nil {
		return
	}
	if env.OK != nil {
		var id int
		if json.Unmarshal(env.ID, &id) != nil {
			return
		}
		s.mu.Lock()
		ch := s.calls[id]
		if id == s.pingID {
			s.pingID = 0
		}
		s.mu.Unlock()
		if ch != nil {
			ch <- env
		}
		return
	}
	switch env.Type {
	case "consumer.new":
		var c consumerInfo
		if json.Unmarshal(env.Data, &c) == nil {
			if p := s.v.currentPeer(); p != nil {
				addConsumer(p, &c)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, _ = s.request(ctx, "consumer.resume", map[string]string{"consumerId": c.ID})
				}()
			}
		}
	case "consumer.closed":
		var c struct {
			ConsumerID string `json:"consumerId"`
		}
		if json.Unmarshal(env.Data, &c) == nil {
			if p := s.v.currentPeer(); p != nil {
				p.removeStream(c.ConsumerID)
			}
		}
	case "stream.state":
		var st struct {
			State string `json:"state"`
		}
		if json.Unmarshal(env.Data, &st) == nil && st.State == "ended" {
			s.v.lose(&codedError{code: "CASCADE_ERR_STREAM_ENDED", msg: "the stream ended"})
		}
	case "node.draining":
		s.v.noteDraining()
	}
}

// join follows redirects to the node that serves the stream, then sets up the transport and
// consumers. Returns once the peer has started ICE; the caller waits for DTLS.
func (s *cascadeSignal) join(ctx context.Context) error {
	v := s.v
	base := v.s.cfg.URL
	ticket := ""
	for hop := 0; hop <= maxRedirects; hop++ {
		wsURL, err := signallingURL(base)
		if err != nil {
			return &codedError{code: "CASCADE_ERR_LOADTEST_USAGE", msg: "bad url: " + err.Error()}
		}
		ws, err := dialWS(wsURL, "", 5*time.Second)
		if err != nil {
			return &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "cannot open " + wsURL + ": " + err.Error()}
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			ws.close()
			return &codedError{code: "CASCADE_ERR_CLIENT_CLOSED", msg: "stopped while joining"}
		}
		s.ws = ws
		s.mu.Unlock()
		go ws.run(s.onMessage)
		go func() {
			<-ws.done
			s.mu.Lock()
			current, joined, closed := s.ws == ws, s.joined, s.closed
			s.mu.Unlock()
			if current && joined && !closed {
				s.v.lose(&codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "signalling connection closed"})
			}
		}()
		watch := map[string]any{"streamId": v.s.cfg.StreamID}
		if ticket != "" {
			watch["ticket"] = ticket
		}
		raw, err := s.request(ctx, "stream.watch", watch)
		if err != nil {
			return err
		}
		var w struct {
			Action          string          `json:"action"`
			NodeID          string          `json:"nodeId"`
			URL             string          `json:"url"`
			Ticket          string          `json:"ticket"`
			RtpCapabilities json.RawMessage `json:"rtpCapabilities"`
			Stream          struct {
				State string `json:"state"`
			} `json:"stream"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "stream.watch: " + err.Error()}
		}
		if w.Action == "redirect" {
			ws.close()
			base, ticket = w.URL, w.Ticket
			v.noteRedirect()
			continue
		}
		v.setNode(w.NodeID)
		if w.Stream.State == "ended" {
			return &codedError{code: "CASCADE_ERR_STREAM_ENDED", msg: "the stream has ended"}
		}
		return s.setup(ctx, w.RtpCapabilities)
	}
	return &codedError{code: "CASCADE_ERR_PROTOCOL_OUT_OF_ORDER", msg: "too many redirects"}
}

func (s *cascadeSignal) setup(ctx context.Context, routerCaps json.RawMessage) error {
	v := s.v
	caps, err := recvCapabilities(routerCaps, v.s.cfg.twcc())
	if err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "rtpCapabilities: " + err.Error()}
	}
	raw, err := s.request(ctx, "transport.create", map[string]string{"direction": "recv"})
	if err != nil {
		return err
	}
	var t transportInfo
	if err := json.Unmarshal(raw, &t); err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "transport.create: " + err.Error()}
	}
	rp, err := remoteFromTransport(&t)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: err.Error()}
	}
	p, err := newPeer(v.s.peerCfg, rp, v.onPeerFail)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_LOADTEST_SOCKET", msg: err.Error()}
	}
	if !v.setPeer(p) {
		p.close()
		return &codedError{code: "CASCADE_ERR_CLIENT_CLOSED", msg: "stopped while joining"}
	}
	raw, err = s.request(ctx, "stream.subscribe", map[string]any{"transportId": t.ID, "rtpCapabilities": caps})
	if err != nil {
		return err
	}
	var sub struct {
		Consumers []consumerInfo `json:"consumers"`
	}
	if err := json.Unmarshal(raw, &sub); err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "stream.subscribe: " + err.Error()}
	}
	for i := range sub.Consumers {
		addConsumer(p, &sub.Consumers[i])
	}
	dtlsParams := map[string]any{"role": "client", "fingerprints": []map[string]string{{"algorithm": "sha-256", "value": v.s.fingerprint}}}
	if _, err := s.request(ctx, "transport.connect", map[string]any{"transportId": t.ID, "dtlsParameters": dtlsParams}); err != nil {
		return err
	}
	// ICE after transport.connect: mediasoup runs DTLS only once it knows its role.
	if err := p.start(); err != nil {
		return &codedError{code: "CASCADE_ERR_LOADTEST_SOCKET", msg: err.Error()}
	}
	for _, c := range sub.Consumers {
		if _, err := s.request(ctx, "consumer.resume", map[string]string{"consumerId": c.ID}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.joined = true
	s.nextPing = monoNs() + int64(v.s.cfg.PingMs)*1e6
	s.mu.Unlock()
	return nil
}

// tick sends session.ping every PingMs, as the SDK's keep-alive does (a node that froze is
// noticed). An answer clears pingID; a ping still unanswered when the next is due is missed.
func (s *cascadeSignal) tick(nowNs int64) {
	s.mu.Lock()
	if !s.joined || s.closed || s.v.s.cfg.PingMs <= 0 || nowNs < s.nextPing {
		s.mu.Unlock()
		return
	}
	s.nextPing = nowNs + int64(s.v.s.cfg.PingMs)*1e6
	if s.pingID != 0 {
		s.missed++
	}
	s.nextID++
	id := s.nextID
	s.pingID = id
	ws := s.ws
	s.mu.Unlock()
	go func() {
		_ = ws.send(map[string]any{"v": protocolVersion, "id": id, "type": "session.ping", "data": struct{}{}})
	}()
}

func (s *cascadeSignal) missedPings() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missed
}

func (s *cascadeSignal) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ws := s.ws
	s.mu.Unlock()
	if ws != nil {
		ws.close()
	}
}
