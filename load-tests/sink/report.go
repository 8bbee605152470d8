package main

// The tick a sink sends every second (and when the parent asks): WorkerTick plus its totals.

import (
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A connected viewer counts as stalled after this long without a packet, once it has had this
// grace after joining (a consumer starts on the next key frame: one per second here).
const (
	stallAfterMs     = 1000
	stallJoinGraceMs = 2000
)

// tickMsg is WorkerTick plus the sink's cumulative totals (for windows of any length).
type tickMsg struct {
	Process        int         `json:"process"`
	IntervalMs     float64     `json:"intervalMs"`
	Started        int         `json:"started"`
	Joining        int         `json:"joining"`
	Connected      int         `json:"connected"`
	FailedTotal    int         `json:"failedTotal"`
	JoinedTotal    int         `json:"joinedTotal"`
	Packets        int64       `json:"packets"`
	Bytes          int64       `json:"bytes"`
	Expected       int64       `json:"expected"`
	Lost           int64       `json:"lost"`
	Frames         int64       `json:"frames"`
	Receiving      int         `json:"receiving"`
	Delay          logHistJSON `json:"delay"`
	CPUUserUs      int64       `json:"cpuUserUs"`
	CPUSystemUs    int64       `json:"cpuSystemUs"`
	RssBytes       int64       `json:"rssBytes"`
	UncaughtErrors int         `json:"uncaughtErrors"`
	Sink           tickTotals  `json:"sink"`
	// The parent's report request this tick answers (0: a periodic tick).
	ReportID int `json:"reportId,omitempty"`
}

type tickTotals struct {
	LostViewers int `json:"lostViewers"`
	// Connected viewers that have received nothing for over a second (and joined over two ago).
	Stalled     int   `json:"stalled"`
	Packets     int64 `json:"packets"`
	Expected    int64 `json:"expected"`
	Lost        int64 `json:"lost"`
	Bytes       int64 `json:"bytes"`
	DecryptOK   int64 `json:"decryptOk"`
	DecryptFail int64 `json:"decryptFail"`
	Nacked      int64 `json:"nacked"`
	Rtx         int64 `json:"rtx"`
	// Datagrams the kernel dropped at the viewers' full sockets: the sink's loss, not the server's.
	SocketDrops int64 `json:"socketDrops"`
	MissedPings int64 `json:"missedPings"`
	// Joins that completed and their ICE+DTLS times, for the join cost.
	JoinMs logHistJSON `json:"joinMs"`
	DtlsMs logHistJSON `json:"dtlsMs"`
}

func (s *sink) report(reportID int) {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.mu.Lock()
	vs := s.viewers
	now := time.Now()
	t := tickMsg{Process: s.cfg.Process, IntervalMs: math.Max(1, float64(now.Sub(s.lastTick).Microseconds())/1000), ReportID: reportID}
	s.lastTick = now
	s.mu.Unlock()
	delay := newLogHist()
	joinH, dtlsH := newLogHist(), newLogHist()
	nowWall := wallMs()
	for _, v := range vs {
		v.mu.Lock()
		st, p := v.state, v.peer
		joinMs, dtlsMs, startedAt := v.joinMs, v.dtlsMs, v.startedAtMs
		v.mu.Unlock()
		if st == stateIdle {
			continue
		}
		t.Started++
		switch st {
		case stateJoining:
			t.Joining++
		case stateConnected:
			t.Connected++
		case stateFailed:
			t.FailedTotal++
		case stateLost:
			t.Sink.LostViewers++
		}
		if !math.IsNaN(joinMs) {
			t.JoinedTotal++
			joinH.add(joinMs)
			dtlsH.add(dtlsMs)
		}
		t.Sink.MissedPings += v.sig.missedPings()
		if p == nil {
			continue
		}
		var packets int64
		lastPacket := 0.0
		p.withStreams(func(streams []*mediaStream, c *peerCounters) {
			for _, m := range streams {
				if !math.IsNaN(m.stats.lastPacketAt) && m.stats.lastPacketAt > lastPacket {
					lastPacket = m.stats.lastPacketAt
				}
				iv := m.stats.takeInterval(delay)
				packets += iv.packets
				t.Packets += iv.packets
				t.Bytes += iv.bytes
				t.Expected += iv.expected
				t.Lost += iv.lost
				t.Frames += iv.frames
				t.Sink.Packets += m.stats.packets
				t.Sink.Bytes += m.stats.bytes
				t.Sink.Expected += m.stats.totalExpected()
				t.Sink.Lost += m.stats.lost()
				t.Sink.Nacked += m.stats.nacked
			}
			t.Sink.DecryptOK += c.decryptOK
			t.Sink.DecryptFail += c.decryptFail
			t.Sink.Rtx += c.rtx
			t.Sink.SocketDrops += c.sockDrops
		})
		if packets > 0 {
			t.Receiving++
		}
		if st == stateConnected && nowWall-startedAt > stallJoinGraceMs+joinMs && nowWall-lastPacket > stallAfterMs {
			t.Sink.Stalled++
		}
	}
	t.Delay = delay.toJSON()
	t.Sink.JoinMs, t.Sink.DtlsMs = joinH.toJSON(), dtlsH.toJSON()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t.CPUUserUs = tvUs(ru.Utime) - tvUs(s.cpuBase.Utime)
	t.CPUSystemUs = tvUs(ru.Stime) - tvUs(s.cpuBase.Stime)
	t.RssBytes = rssBytes()
	s.send(map[string]any{"type": "tick", "tick": t})
}

func tvUs(tv syscall.Timeval) int64 { return tv.Sec*1e6 + tv.Usec }

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
