package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Janus's Streaming plugin over its WebSocket API (subprotocol janus-protocol), one session
// per viewer as janus.js opens it: create, attach, watch (Janus offers), start (we answer),
// a keepalive every 25 s. Janus is full ICE and the offerer, so the sink is the controlled
// agent: it answers Janus's checks and sends its own.
type janusSignal struct {
	v       *viewer
	mu      sync.Mutex
	ws      *wsConn
	nextTx  int
	waiters map[string]chan map[string]any
	session int64
	handle  int64
	// Candidates trickled before the peer existed.
	trickled      []string
	nextKeepalive int64
	missed        int64
	joined        bool
	closed        bool
}

const janusKeepaliveNs = int64(25e9)

func newJanusSignal(v *viewer) *janusSignal {
	return &janusSignal{v: v, waiters: map[string]chan map[string]any{}}
}

func (s *janusSignal) onMessage(raw []byte) {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	kind, _ := m["janus"].(string)
	switch kind {
	case "trickle":
		cand, _ := m["candidate"].(map[string]any)
		if line, ok := cand["candidate"].(string); ok {
			s.mu.Lock()
			s.trickled = append(s.trickled, line)
			s.mu.Unlock()
		}
		return
	case "hangup", "detached":
		s.mu.Lock()
		joined := s.joined
		s.mu.Unlock()
		if joined {
			reason, _ := m["reason"].(string)
			s.v.lose(&codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "janus " + kind + ": " + reason})
		}
		return
	case "webrtcup", "media", "slowlink", "timeout":
		return
	}
	tx, _ := m["transaction"].(string)
	s.mu.Lock()
	ch := s.waiters[tx]
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
		return
	}
	// An event for the handle outside a transaction (the stream stopped, …).
	if kind == "event" {
		if status := pluginResult(m, "status"); status == "stopped" {
			s.v.lose(&codedError{code: "CASCADE_ERR_STREAM_ENDED", msg: "janus: the mountpoint stopped"})
		}
	}
}

// pluginResult digs plugindata.data.result[key] (the Streaming plugin's status events).
func pluginResult(m map[string]any, key string) string {
	pd, _ := m["plugindata"].(map[string]any)
	data, _ := pd["data"].(map[string]any)
	res, _ := data["result"].(map[string]any)
	v, _ := res[key].(string)
	return v
}

func pluginError(m map[string]any) error {
	if e, ok := m["error"].(map[string]any); ok {
		return &codedError{code: "CASCADE_ERR_LOADTEST_JANUS", msg: fmt.Sprintf("janus error %v: %v", e["code"], e["reason"])}
	}
	pd, _ := m["plugindata"].(map[string]any)
	data, _ := pd["data"].(map[string]any)
	if e, ok := data["error"]; ok {
		return &codedError{code: "CASCADE_ERR_LOADTEST_JANUS", msg: fmt.Sprintf("janus streaming error %v: %v", data["error_code"], e)}
	}
	return nil
}

// call sends msg and waits for the first reply of its transaction that `done` accepts
// (acks are skipped unless done wants them); a Janus error ends it.
func (s *janusSignal) call(ctx context.Context, msg map[string]any, done func(map[string]any) bool) (map[string]any, error) {
	s.mu.Lock()
	s.nextTx++
	tx := "t" + strconv.Itoa(s.nextTx)
	ch := make(chan map[string]any, 4)
	s.waiters[tx] = ch
	ws := s.ws
	if s.session != 0 {
		msg["session_id"] = s.session
	}
	if s.handle != 0 {
		msg["handle_id"] = s.handle
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, tx)
		s.mu.Unlock()
	}()
	msg["transaction"] = tx
	what, _ := msg["janus"].(string)
	if err := ws.send(msg); err != nil {
		return nil, &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "janus " + what + ": " + err.Error()}
	}
	for {
		select {
		case m := <-ch:
			if err := pluginError(m); err != nil {
				return nil, err
			}
			if done(m) {
				return m, nil
			}
		case <-ws.done:
			return nil, &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "janus " + what + ": connection closed"}
		case <-ctx.Done():
			return nil, &codedError{code: "CASCADE_ERR_LOADTEST_JOIN_TIMEOUT", msg: "janus " + what + ": no answer in time"}
		}
	}
}

func isKind(k string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["janus"] == k }
}

func dataID(m map[string]any) int64 {
	d, _ := m["data"].(map[string]any)
	f, _ := d["id"].(float64)
	return int64(f)
}

func (s *janusSignal) join(ctx context.Context) error {
	v := s.v
	mountpoint, err := strconv.Atoi(v.s.cfg.StreamID)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_LOADTEST_USAGE", msg: "a Janus mountpoint id is a number, got " + v.s.cfg.StreamID}
	}
	ws, err := dialWS(v.s.cfg.URL, "janus-protocol", 5*time.Second)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "cannot open " + v.s.cfg.URL + ": " + err.Error()}
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
		joined, closed := s.joined, s.closed
		s.mu.Unlock()
		if joined && !closed {
			s.v.lose(&codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "janus connection closed"})
		}
	}()
	m, err := s.call(ctx, map[string]any{"janus": "create"}, isKind("success"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.session = dataID(m)
	s.mu.Unlock()
	m, err = s.call(ctx, map[string]any{"janus": "attach", "plugin": "janus.plugin.streaming"}, isKind("success"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.handle = dataID(m)
	s.mu.Unlock()
	v.setNode("janus")
	m, err = s.call(ctx, map[string]any{"janus": "message", "body": map[string]any{"request": "watch", "id": mountpoint}},
		func(m map[string]any) bool { _, ok := m["jsep"]; return m["janus"] == "event" && ok })
	if err != nil {
		return err
	}
	jsep, _ := m["jsep"].(map[string]any)
	sdp, _ := jsep["sdp"].(string)
	offer, err := parseOffer(sdp)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "janus offer: " + err.Error()}
	}
	s.mu.Lock()
	for _, line := range s.trickled {
		offer.addCandidate(line)
	}
	s.mu.Unlock()
	rp, err := offer.remote()
	if err != nil {
		return &codedError{code: "CASCADE_ERR_PROTOCOL_MALFORMED", msg: "janus offer: " + err.Error()}
	}
	p, err := newPeer(v.s.peerCfg, rp, v.onPeerFail)
	if err != nil {
		return &codedError{code: "CASCADE_ERR_LOADTEST_SOCKET", msg: err.Error()}
	}
	if !v.setPeer(p) {
		p.close()
		return &codedError{code: "CASCADE_ERR_CLIENT_CLOSED", msg: "stopped while joining"}
	}
	answer, specs, twccID := offer.answer(answerParams{ufrag: p.localUfrag, pwd: p.localPwd, fingerprint: v.s.fingerprint,
		candidate: p.localAddr(), twcc: v.s.cfg.twcc()})
	for _, spec := range specs {
		p.addStream(spec, twccID)
	}
	// ICE first: Janus answers checks as soon as it has our answer, and ours retry meanwhile.
	if err := p.start(); err != nil {
		return &codedError{code: "CASCADE_ERR_LOADTEST_SOCKET", msg: err.Error()}
	}
	if _, err := s.call(ctx, map[string]any{"janus": "message", "body": map[string]any{"request": "start"},
		"jsep": map[string]any{"type": "answer", "sdp": answer}}, isKind("event")); err != nil {
		return err
	}
	s.mu.Lock()
	s.joined = true
	s.nextKeepalive = monoNs() + janusKeepaliveNs
	s.mu.Unlock()
	return nil
}

func (s *janusSignal) tick(nowNs int64) {
	s.mu.Lock()
	if !s.joined || s.closed || nowNs < s.nextKeepalive {
		s.mu.Unlock()
		return
	}
	s.nextKeepalive = nowNs + janusKeepaliveNs
	s.nextTx++
	msg := map[string]any{"janus": "keepalive", "session_id": s.session, "transaction": "k" + strconv.Itoa(s.nextTx)}
	ws := s.ws
	s.mu.Unlock()
	go func() {
		if ws.send(msg) != nil {
			s.mu.Lock()
			s.missed++
			s.mu.Unlock()
		}
	}()
}

func (s *janusSignal) missedPings() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missed
}

// close hangs up (destroying the session frees Janus's handle at once), then closes.
func (s *janusSignal) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ws, session := s.ws, s.session
	s.nextTx++
	tx := "d" + strconv.Itoa(s.nextTx)
	s.mu.Unlock()
	if ws == nil {
		return
	}
	if session != 0 {
		_ = ws.send(map[string]any{"janus": "destroy", "session_id": session, "transaction": tx})
	}
	ws.close()
}
