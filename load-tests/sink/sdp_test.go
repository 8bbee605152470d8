package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// An offer as Janus 1.1's Streaming plugin sends it (trimmed): audio and video, RTX for video,
// candidates and credentials per m-line.
const janusOffer = "v=0\r\n" +
	"o=- 1733300000000000 1 IN IP4 127.0.0.1\r\n" +
	"s=Mountpoint 1\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE a v\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"a=sendonly\r\n" +
	"a=mid:a\r\n" +
	"a=rtcp-mux\r\n" +
	"a=ice-ufrag:jufr\r\n" +
	"a=ice-pwd:janus-password-0123456789\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=ssrc:1111 cname:janus\r\n" +
	"a=candidate:1 1 udp 2015363327 127.0.0.1 40001 typ host\r\n" +
	"a=candidate:2 1 tcp 1015363327 127.0.0.1 9 typ host tcptype active\r\n" +
	"a=end-of-candidates\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"a=sendonly\r\n" +
	"a=mid:v\r\n" +
	"a=rtcp-mux\r\n" +
	"a=ice-ufrag:jufr\r\n" +
	"a=ice-pwd:janus-password-0123456789\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtpmap:100 VP8/90000\r\n" +
	"a=rtcp-fb:100 ccm fir\r\n" +
	"a=rtcp-fb:100 nack\r\n" +
	"a=rtcp-fb:100 nack pli\r\n" +
	"a=rtcp-fb:100 goog-remb\r\n" +
	"a=rtcp-fb:100 transport-cc\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=rtpmap:101 rtx/90000\r\n" +
	"a=fmtp:101 apt=100\r\n" +
	"a=ssrc-group:FID 2222 3333\r\n" +
	"a=ssrc:2222 cname:janus\r\n" +
	"a=ssrc:3333 cname:janus\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
	"a=mid:d\r\n"

func TestJanusOfferIsParsed(t *testing.T) {
	o, err := parseOffer(janusOffer)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := o.remote()
	if err != nil {
		t.Fatal(err)
	}
	if rp.iceUfrag != "jufr" || rp.icePwd != "janus-password-0123456789" || rp.iceLite || len(rp.fingerprint) != 32 || rp.fingerprint[0] != 0xAA {
		t.Fatalf("%+v", rp)
	}
	if len(rp.candidates) != 1 || rp.candidates[0] != netip.MustParseAddrPort("127.0.0.1:40001") {
		t.Fatalf("candidates %v (the TCP one must be skipped)", rp.candidates)
	}
}

func TestAnswerAcceptsAudioAndVideoAndRejectsData(t *testing.T) {
	o, _ := parseOffer(janusOffer)
	sdp, specs, twccID := o.answer(answerParams{ufrag: "me", pwd: "my-password", fingerprint: "01:02", candidate: netip.MustParseAddrPort("127.0.0.1:5000"), twcc: true})
	if twccID != 3 {
		t.Fatalf("twcc id %d", twccID)
	}
	if len(specs) != 2 {
		t.Fatalf("specs %+v", specs)
	}
	a, v := specs[0], specs[1]
	if a.kind != "audio" || a.pt != 111 || a.ssrc != 1111 || a.clockRate != 48000 || a.nack {
		t.Fatalf("audio %+v", a)
	}
	if v.kind != "video" || v.pt != 100 || v.ssrc != 2222 || v.rtxSSRC != 3333 || v.rtxPT != 101 || !v.nack || v.clockRate != 90000 {
		t.Fatalf("video %+v", v)
	}
	for _, want := range []string{
		"a=group:BUNDLE a v\r\n",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
		"m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\n",
		"a=recvonly\r\n", "a=setup:active\r\n", "a=ice-ufrag:me\r\n", "a=fingerprint:sha-256 01:02\r\n",
		"a=rtcp-fb:100 nack\r\n", "a=rtcp-fb:100 transport-cc\r\n", "a=fmtp:101 apt=100\r\n",
		"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n",
		"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n",
	} {
		if !strings.Contains(sdp, want) {
			t.Errorf("answer lacks %q:\n%s", want, sdp)
		}
	}
	if strings.Contains(sdp, "goog-remb") {
		t.Error("answer accepts REMB, which the sink does not send")
	}
	// Without TWCC the extension and the feedback are left out.
	sdp, _, twccID = o.answer(answerParams{ufrag: "me", pwd: "p", fingerprint: "01", candidate: netip.MustParseAddrPort("127.0.0.1:5000")})
	if twccID != 0 || strings.Contains(sdp, "transport-cc") {
		t.Fatalf("twcc negotiated although disabled: %d", twccID)
	}
}

func TestTrickledCandidatesAreTaken(t *testing.T) {
	o, _ := parseOffer(strings.ReplaceAll(janusOffer, "a=candidate:1 1 udp 2015363327 127.0.0.1 40001 typ host\r\n", ""))
	if _, err := o.remote(); err == nil {
		t.Fatal("an offer without a UDP candidate must be refused")
	}
	o.addCandidate("candidate:3 1 udp 2015363327 127.0.0.1 40002 typ host")
	rp, err := o.remote()
	if err != nil || rp.candidates[0].Port() != 40002 {
		t.Fatalf("%v %v", rp.candidates, err)
	}
}

// Router capabilities as mediasoup 3.12 gives them for Cascade's codecs (trimmed).
const routerCaps = `{"codecs":[
 {"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2,"preferredPayloadType":100,"rtcpFeedback":[{"type":"nack","parameter":""},{"type":"transport-cc","parameter":""}]},
 {"kind":"video","mimeType":"video/VP8","clockRate":90000,"preferredPayloadType":101,"rtcpFeedback":[{"type":"nack","parameter":""},{"type":"nack","parameter":"pli"},{"type":"ccm","parameter":"fir"},{"type":"goog-remb","parameter":""},{"type":"transport-cc","parameter":""}]},
 {"kind":"video","mimeType":"video/rtx","clockRate":90000,"preferredPayloadType":102,"parameters":{"apt":101}},
 {"kind":"video","mimeType":"video/H264","clockRate":90000,"preferredPayloadType":103},
 {"kind":"video","mimeType":"video/rtx","clockRate":90000,"preferredPayloadType":104,"parameters":{"apt":103}}],
 "headerExtensions":[
 {"kind":"video","uri":"urn:ietf:params:rtp-hdrext:sdes:mid","preferredId":1},
 {"kind":"video","uri":"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time","preferredId":4},
 {"kind":"video","uri":"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01","preferredId":5}]}`

func TestReceiveCapabilitiesKeepOpusVP8AndTheirRTX(t *testing.T) {
	caps, err := recvCapabilities(json.RawMessage(routerCaps), true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(caps)
	s := string(b)
	for _, want := range []string{`"audio/opus"`, `"video/VP8"`, `"apt":101`, `transport-wide-cc`, `"transport-cc"`} {
		if !strings.Contains(s, want) {
			t.Errorf("capabilities lack %s: %s", want, s)
		}
	}
	for _, not := range []string{`H264`, `"apt":103`, `abs-send-time`, `goog-remb`, `sdes:mid`} {
		if strings.Contains(s, not) {
			t.Errorf("capabilities keep %s: %s", not, s)
		}
	}
	caps, _ = recvCapabilities(json.RawMessage(routerCaps), false)
	b, _ = json.Marshal(caps)
	if strings.Contains(string(b), "transport") {
		t.Errorf("TWCC kept although disabled: %s", b)
	}
}

func TestConsumerParametersBecomeAStreamSpec(t *testing.T) {
	var c consumerInfo
	_ = json.Unmarshal([]byte(`{"id":"c1","kind":"video","rtpParameters":{"codecs":[
		{"mimeType":"video/VP8","payloadType":101,"clockRate":90000,"rtcpFeedback":[{"type":"nack","parameter":""},{"type":"transport-cc","parameter":""}]},
		{"mimeType":"video/rtx","payloadType":102,"clockRate":90000,"parameters":{"apt":101}}],
		"encodings":[{"ssrc":555,"rtx":{"ssrc":556}}],
		"headerExtensions":[{"uri":"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01","id":5}]}}`), &c)
	cfg := &peerConfig{twcc: true, decryptEvery: 50, freezeGapMs: 500}
	p := &peer{cfg: cfg, bySSRC: map[uint32]*mediaStream{}, byRtxSSRC: map[uint32]*mediaStream{}, byPT: map[uint8]*mediaStream{}, byRtxPT: map[uint8]*mediaStream{}}
	addConsumer(p, &c)
	m := p.bySSRC[555]
	if m == nil || p.byRtxSSRC[556] != m || m.spec.pt != 101 || m.spec.rtxPT != 102 || !m.spec.nack || m.spec.kind != "video" || p.twccID != 5 {
		t.Fatalf("%+v twcc=%d", m, p.twccID)
	}
}

// A peer whose signalling is still under way (not started) must not time ICE out, however
// long the process has been running (a bug once failed every join after the first 8 s).
func TestICETimeoutCountsFromTheStartOnly(t *testing.T) {
	pl, err := newPoller(0)
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	cfg := &peerConfig{poller: pl, iceTimeout: time.Second, dtlsTimeout: time.Second, decryptEvery: 50, freezeGapMs: 500}
	rp := remoteParams{iceUfrag: "u", icePwd: "p", iceLite: true, candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}
	p, err := newPeer(cfg, rp, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	p.tick(monoNs() + int64(time.Hour))
	select {
	case err := <-failed:
		t.Fatalf("failed before start: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	p.tick(monoNs() + int64(2*time.Second))
	select {
	case err := <-failed:
		if c, ok := err.(*codedError); !ok || c.code != "CASCADE_ERR_LOADTEST_ICE" {
			t.Fatalf("want an ICE failure, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ICE failure after the timeout")
	}
}
