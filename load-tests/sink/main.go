// cascade-sink: many receive-only WebRTC viewers in one process, for load tests and the
// capacity benchmark (load-tests/src/SinkFleet.ts drives it).
//
// Each viewer joins through the server's real signalling (Cascade's WebSocket protocol, or
// Janus's Streaming plugin API), does real ICE, DTLS-SRTP, RTCP receiver reports, NACK and
// transport-wide congestion control feedback, but no more per packet than a receiver must:
// the sequence number, timestamp and marker are read from the clear RTP header, and only a
// sample of packets is decrypted to check that keys and packets are right.
//
// It speaks load-tests/src/workerMessages.ts over stdio, one JSON object per line: the
// parent sends {"type":"start","config":…}, {"type":"add",…} and {"type":"stop"} on stdin;
// the sink answers ready, a tick per second, and final (the per-viewer results). It exits
// when stdin closes (the parent is gone) and at its hard deadline, whatever happens.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/crypto/selfsign"
)

type sinkConfig struct {
	Process        int     `json:"process"`
	URL            string  `json:"url"`
	StreamID       string  `json:"streamId"`
	FirstIndex     int     `json:"firstIndex"`
	Count          int     `json:"count"`
	RatePerSec     float64 `json:"ratePerSec"`
	MaxInFlight    int     `json:"maxInFlight"`
	RampDeadlineMs int64   `json:"rampDeadlineMs"`
	HardDeadlineMs int64   `json:"hardDeadlineMs"`
	Stamped        bool    `json:"stamped"`
	FreezeGapMs    float64 `json:"freezeGapMs"`
	JoinTimeoutMs  int64   `json:"joinTimeoutMs"`

	// Sink only. Server: "cascade" (default) or "janus" (URL is Janus's WebSocket API,
	// StreamID the Streaming mountpoint id).
	Server string `json:"server"`
	// session.ping period, ms (0: none). Default 1000.
	PingMs int `json:"pingMs"`
	// Negotiate transport-wide congestion control (default true).
	Twcc *bool `json:"twcc"`
	// Decrypt one packet in this many per stream. Default 50.
	DecryptEvery int `json:"decryptEvery"`
	// SRTP profiles offered in DTLS, in order: "AES_CM_128_HMAC_SHA1_80" (default),
	// "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM".
	SrtpProfiles []string `json:"srtpProfiles"`
	// Address the viewers' sockets bind. Default: the one the kernel sends from towards the
	// server's candidate (127.0.0.1 for a server on loopback).
	LocalIP string `json:"localIp"`
	// Tick period, ms (default 1000).
	TickMs int `json:"tickMs"`
	// Read the sockets every PollMs (0: as packets come). Default 20; see recvmmsg_linux.go.
	PollMs *int `json:"pollMs"`
	// Fault injection for tests: dropDtls loses every DTLS record from the server (a lost
	// handshake, as a network dropping it would).
	Faults struct {
		DropDtls bool `json:"dropDtls"`
	} `json:"faults"`
}

func (c *sinkConfig) twcc() bool { return c.Twcc == nil || *c.Twcc }

type parentMessage struct {
	Type   string      `json:"type"`
	Config *sinkConfig `json:"config"`
	// add: more viewers, joining at this rate.
	Count      int     `json:"count"`
	RatePerSec float64 `json:"ratePerSec"`
	// report: echoed in the tick it asks for.
	ID int `json:"id"`
}

type sink struct {
	reportMu    sync.Mutex // one report at a time (the ticker's and the parent's)
	cfg         *sinkConfig
	peerCfg     *peerConfig
	fingerprint string
	out         *bufio.Writer
	outMu       sync.Mutex

	mu       sync.Mutex
	viewers  []*viewer
	queue    []*viewer // not started yet
	rate     float64
	rampT0   time.Time
	rampDone int // joins started since rampT0
	inFlight int
	finished bool
	t0       time.Time
	lastTick time.Time
	cpuBase  syscall.Rusage
}

func main() {
	// A CPU profile for development: CASCADE_SINK_CPUPROFILE=/tmp/sink.pprof (written on exit).
	if path := os.Getenv("CASCADE_SINK_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	s := &sink{out: bufio.NewWriterSize(os.Stdout, 1<<16)}
	s.send(map[string]any{"type": "ready", "pid": os.Getpid()})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var m parentMessage
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			s.fatal("bad message from the parent: " + err.Error())
		}
		switch m.Type {
		case "start":
			if s.cfg == nil && m.Config != nil {
				if err := s.start(m.Config); err != nil {
					s.fatal(err.Error())
				}
			}
		case "add":
			s.add(m.Count, m.RatePerSec)
		case "report":
			// A tick now: the parent reads windows of any length at the instants it chooses.
			if s.cfg != nil {
				s.report(m.ID)
			}
		case "stop":
			if s.cfg == nil {
				exit(0)
			}
			s.finish()
		}
	}
	// The parent is gone: nobody reads the results.
	s.mu.Lock()
	vs := append([]*viewer(nil), s.viewers...)
	s.mu.Unlock()
	for _, v := range vs {
		v.stop()
	}
	exit(0)
}

func (s *sink) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.out.Write(b)
	_ = s.out.WriteByte('\n')
	_ = s.out.Flush()
}

func (s *sink) fatal(msg string) {
	s.send(map[string]any{"type": "fatal", "message": msg})
	exit(1)
}

var srtpProfileNames = map[string]dtls.SRTPProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	"AES_CM_128_HMAC_SHA1_32": dtls.SRTP_AES128_CM_HMAC_SHA1_32,
	"AEAD_AES_128_GCM":        dtls.SRTP_AEAD_AES_128_GCM,
}

func (s *sink) start(c *sinkConfig) error {
	if c.Server == "" {
		c.Server = "cascade"
	}
	if c.Server != "cascade" && c.Server != "janus" {
		return fmt.Errorf("unknown server kind %q", c.Server)
	}
	if c.PingMs == 0 {
		c.PingMs = 1000
	}
	if c.DecryptEvery <= 0 {
		c.DecryptEvery = 50
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.JoinTimeoutMs <= 0 {
		c.JoinTimeoutMs = 15000
	}
	if c.PollMs == nil {
		d := 20
		c.PollMs = &d
	}
	if c.TickMs <= 0 {
		c.TickMs = 1000
	}
	if c.FreezeGapMs <= 0 {
		c.FreezeGapMs = 500
	}
	if len(c.SrtpProfiles) == 0 {
		c.SrtpProfiles = []string{"AES_CM_128_HMAC_SHA1_80"}
	}
	var localIP netip.Addr
	if c.LocalIP != "" {
		ip, err := netip.ParseAddr(c.LocalIP)
		if err != nil {
			return fmt.Errorf("localIp: %w", err)
		}
		localIP = ip
	}
	var profiles []dtls.SRTPProtectionProfile
	for _, name := range c.SrtpProfiles {
		p, ok := srtpProfileNames[name]
		if !ok {
			return fmt.Errorf("unknown SRTP profile %q", name)
		}
		profiles = append(profiles, p)
	}
	// One certificate for every viewer of the process: a browser makes one per peer
	// connection, but the server's handshake work is the same either way.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cert, err := selfsign.SelfSign(key)
	if err != nil {
		return err
	}
	pl, err := newPoller(time.Duration(*c.PollMs) * time.Millisecond)
	if err != nil {
		return err
	}
	go pl.run()
	s.cfg = c
	s.peerCfg = &peerConfig{poller: pl, cert: dtls.Config{Certificates: []tls.Certificate{cert}}, localIP: localIP, decryptEvery: c.DecryptEvery,
		twcc: c.twcc(), stamped: c.Stamped, freezeGapMs: c.FreezeGapMs, profiles: profiles,
		iceTimeout: 8 * time.Second, dtlsTimeout: 10 * time.Second, dropDtls: c.Faults.DropDtls}
	if s.fingerprint, err = certFingerprint(&s.peerCfg.cert); err != nil {
		return err
	}
	s.t0 = time.Now()
	s.lastTick = s.t0
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s.cpuBase)
	s.add(c.Count, c.RatePerSec)
	go s.loop()
	go func() {
		time.Sleep(time.Duration(c.HardDeadlineMs) * time.Millisecond)
		s.finish()
		time.Sleep(2 * time.Second)
		exit(0)
	}()
	return nil
}

// add queues count more viewers, joining at ratePerSec (all of this process's viewers).
func (s *sink) add(count int, rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil || s.finished || count <= 0 {
		return
	}
	if time.Since(s.t0) > time.Duration(s.cfg.RampDeadlineMs)*time.Millisecond {
		return
	}
	for i := 0; i < count; i++ {
		v := newViewer(s, s.cfg.FirstIndex+len(s.viewers))
		s.viewers = append(s.viewers, v)
		s.queue = append(s.queue, v)
	}
	if rate <= 0 {
		rate = 20
	}
	s.rate = rate
	s.rampT0 = time.Now()
	s.rampDone = 0
}

// loop runs the ramp, every viewer's timers (20 ms) and the ticks.
func (s *sink) loop() {
	const step = 20 * time.Millisecond
	timer := time.NewTicker(step)
	defer timer.Stop()
	for range timer.C {
		s.mu.Lock()
		if s.finished {
			s.mu.Unlock()
			return
		}
		s.rampLocked()
		vs := s.viewers
		due := time.Since(s.lastTick) >= time.Duration(s.cfg.TickMs)*time.Millisecond
		s.mu.Unlock()
		now := monoNs()
		for _, v := range vs {
			v.tick(now)
		}
		if due {
			s.report(0)
		}
	}
}

func (s *sink) rampLocked() {
	if len(s.queue) == 0 || time.Since(s.t0) > time.Duration(s.cfg.RampDeadlineMs)*time.Millisecond {
		return
	}
	// dueJoins (ramp.ts): the first at once, then one every 1/rate s.
	due := int(math.Floor(float64(time.Since(s.rampT0).Milliseconds())*s.rate/1000)) + 1
	for s.rampDone < due && len(s.queue) > 0 && s.inFlight < s.cfg.MaxInFlight {
		v := s.queue[0]
		s.queue = s.queue[1:]
		s.rampDone++
		s.inFlight++
		go func() {
			v.join()
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
	}
}

func (s *sink) finish() {
	s.mu.Lock()
	if s.finished || s.cfg == nil {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.report(0)
	s.mu.Lock()
	s.finished = true
	vs := s.viewers
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Add(1)
		go func(v *viewer) {
			defer wg.Done()
			v.stop()
		}(v)
	}
	wg.Wait()
	delay := newLogHist()
	results := make([]viewerResult, 0, len(vs))
	for _, v := range vs {
		if p := v.currentPeer(); p != nil {
			p.withStreams(func(streams []*mediaStream, _ *peerCounters) {
				for _, m := range streams {
					delay.merge(m.stats.delay)
				}
			})
		}
		results = append(results, v.result(s.cfg.Process))
	}
	s.send(map[string]any{"type": "final", "final": map[string]any{"process": s.cfg.Process, "viewers": results, "delay": delay.toJSON()}})
	// Let the close messages leave before the sockets die with the process.
	time.Sleep(300 * time.Millisecond)
	exit(0)
}

var monoBase = time.Now()

// stopProfile flushes the development CPU profile; every exit path calls exit().
var stopProfile = func() {}

func exit(code int) {
	stopProfile()
	os.Exit(code)
}

// monoNs: monotonic ns (timers, NACK and TWCC timing).
func monoNs() int64 { return int64(time.Since(monoBase)) }

// wallMs: wall-clock ms, the clock the broadcaster's stamps use.
func wallMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }
