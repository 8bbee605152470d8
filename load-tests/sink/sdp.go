package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The little SDP the sink needs to answer a Janus offer: ICE credentials, the DTLS
// fingerprint, host candidates, and per m-line the codec, RTX, SSRCs, NACK and TWCC.

type sdpMedia struct {
	kind   string // audio, video, application, …
	mid    string
	pts    []uint8
	rtpmap map[uint8]string // pt → "opus/48000/2"
	fmtp   map[uint8]string
	rtcpFb map[uint8][]string
	extmap map[string]uint8 // uri → id
	ssrcs  []uint32
	fid    [2]uint32 // media, rtx (ssrc-group:FID)
	dir    string
	ufrag  string
	pwd    string
	fp     string
}

type sdpOffer struct {
	ufrag, pwd, fp string
	iceLite        bool
	bundle         bool
	media          []*sdpMedia
	candidates     []netip.AddrPort
}

func parseOffer(sdp string) (*sdpOffer, error) {
	o := &sdpOffer{}
	var cur *sdpMedia
	for _, line := range strings.Split(strings.ReplaceAll(sdp, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		if strings.HasPrefix(line, "m=") {
			f := strings.Fields(line[2:])
			if len(f) < 3 {
				return nil, fmt.Errorf("bad m-line %q", line)
			}
			cur = &sdpMedia{kind: f[0], rtpmap: map[uint8]string{}, fmtp: map[uint8]string{}, rtcpFb: map[uint8][]string{}, extmap: map[string]uint8{}}
			for _, p := range f[3:] {
				if n, err := strconv.Atoi(p); err == nil && n >= 0 && n < 128 {
					cur.pts = append(cur.pts, uint8(n))
				}
			}
			o.media = append(o.media, cur)
			continue
		}
		if !strings.HasPrefix(line, "a=") {
			continue
		}
		name, value, _ := strings.Cut(line[2:], ":")
		switch name {
		case "ice-lite":
			o.iceLite = true
		case "group":
			if strings.HasPrefix(value, "BUNDLE") {
				o.bundle = true
			}
		case "candidate":
			o.addCandidate(value)
		}
		if field := credentialField(o, cur, name); field != nil {
			*field = value
		}
		if cur == nil {
			continue
		}
		switch name {
		case "mid":
			cur.mid = value
		case "sendonly", "recvonly", "sendrecv", "inactive":
			cur.dir = name
		case "rtpmap", "fmtp", "rtcp-fb":
			ptStr, rest, _ := strings.Cut(value, " ")
			pt, err := strconv.Atoi(ptStr)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			switch name {
			case "rtpmap":
				cur.rtpmap[uint8(pt)] = rest
			case "fmtp":
				cur.fmtp[uint8(pt)] = rest
			default:
				cur.rtcpFb[uint8(pt)] = append(cur.rtcpFb[uint8(pt)], rest)
			}
		case "extmap":
			idStr, rest, _ := strings.Cut(value, " ")
			idStr, _, _ = strings.Cut(idStr, "/")
			id, err := strconv.Atoi(idStr)
			if err == nil && id > 0 && id < 256 {
				cur.extmap[strings.Fields(rest + " ")[0]] = uint8(id)
			}
		case "ssrc":
			f := strings.Fields(value)
			if n, err := strconv.ParseUint(f[0], 10, 32); err == nil && !containsU32(cur.ssrcs, uint32(n)) {
				cur.ssrcs = append(cur.ssrcs, uint32(n))
			}
		case "ssrc-group":
			f := strings.Fields(value)
			if len(f) == 3 && f[0] == "FID" {
				a, _ := strconv.ParseUint(f[1], 10, 32)
				b, _ := strconv.ParseUint(f[2], 10, 32)
				cur.fid = [2]uint32{uint32(a), uint32(b)}
			}
		}
	}
	if len(o.media) == 0 {
		return nil, errors.New("no m-line")
	}
	return o, nil
}

// credentialField: where an ice-ufrag, ice-pwd or fingerprint line goes (session or m-line).
func credentialField(o *sdpOffer, cur *sdpMedia, name string) *string {
	switch {
	case name == "ice-ufrag" && cur == nil:
		return &o.ufrag
	case name == "ice-ufrag":
		return &cur.ufrag
	case name == "ice-pwd" && cur == nil:
		return &o.pwd
	case name == "ice-pwd":
		return &cur.pwd
	case name == "fingerprint" && cur == nil:
		return &o.fp
	case name == "fingerprint":
		return &cur.fp
	}
	return nil
}

func containsU32(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// addCandidate takes "candidate:…" or its value: UDP host/srflx candidates of component 1.
func (o *sdpOffer) addCandidate(line string) {
	line = strings.TrimPrefix(strings.TrimPrefix(line, "a="), "candidate:")
	f := strings.Fields(line)
	if len(f) < 8 || f[1] != "1" || !strings.EqualFold(f[2], "udp") {
		return
	}
	ip, err := netip.ParseAddr(f[4])
	port, err2 := strconv.Atoi(f[5])
	if err != nil || err2 != nil || port <= 0 || port > 65535 {
		return
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
	for _, c := range o.candidates {
		if c == ap {
			return
		}
	}
	o.candidates = append(o.candidates, ap)
}

// remote: the credentials of the first m-line we take (BUNDLE: all share them).
func (o *sdpOffer) remote() (remoteParams, error) {
	rp := remoteParams{iceUfrag: o.ufrag, icePwd: o.pwd, iceLite: o.iceLite, candidates: o.candidates}
	fp := o.fp
	for _, m := range o.media {
		if m.ufrag != "" && rp.iceUfrag == "" {
			rp.iceUfrag = m.ufrag
		}
		if m.pwd != "" && rp.icePwd == "" {
			rp.icePwd = m.pwd
		}
		if m.fp != "" && fp == "" {
			fp = m.fp
		}
	}
	if rp.iceUfrag == "" || rp.icePwd == "" {
		return rp, errors.New("no ICE credentials")
	}
	alg, value, _ := strings.Cut(fp, " ")
	if !strings.EqualFold(alg, "sha-256") {
		return rp, fmt.Errorf("no sha-256 fingerprint (got %q)", alg)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(value), ":", ""))
	if err != nil {
		return rp, err
	}
	rp.fingerprint = b
	if len(rp.candidates) == 0 {
		return rp, errors.New("no UDP candidate")
	}
	return rp, nil
}

type answerParams struct {
	ufrag, pwd, fingerprint string
	candidate               netip.AddrPort
	twcc                    bool
}

var answerCodecs = map[string]string{"audio": "opus/", "video": "vp8/"}

// answer accepts the first Opus audio and VP8 video m-lines (recvonly), with RTX, NACK and
// TWCC where offered, and rejects the rest. It returns the SDP, the streams to expect and the
// negotiated TWCC extension id.
func (o *sdpOffer) answer(a answerParams) (string, []streamSpec, uint8) {
	var b strings.Builder
	family := "IP4"
	if a.candidate.Addr().Is6() {
		family = "IP6"
	}
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("v=0")
	w("o=- 1 2 IN %s %s", family, a.candidate.Addr())
	w("s=-")
	w("t=0 0")
	var specs []streamSpec
	var twccID uint8
	var body strings.Builder
	var mids []string
	taken := map[string]bool{}
	for _, m := range o.media {
		pt, ok := pickCodec(m, answerCodecs[m.kind])
		if !ok || taken[m.kind] || m.dir == "recvonly" || m.dir == "inactive" {
			if m.kind == "application" {
				fmt.Fprintf(&body, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN %s %s\r\n", family, a.candidate.Addr())
			} else {
				fmt.Fprintf(&body, "m=%s 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN %s %s\r\n", m.kind, family, a.candidate.Addr())
			}
			if m.mid != "" {
				fmt.Fprintf(&body, "a=mid:%s\r\n", m.mid)
			}
			continue
		}
		taken[m.kind] = true
		rtxPT := uint8(0)
		for p, fmtp := range m.fmtp {
			if strings.HasPrefix(strings.ToLower(m.rtpmap[p]), "rtx/") && fmtp == "apt="+strconv.Itoa(int(pt)) {
				rtxPT = p
			}
		}
		pts := strconv.Itoa(int(pt))
		if rtxPT != 0 {
			pts += " " + strconv.Itoa(int(rtxPT))
		}
		fmt.Fprintf(&body, "m=%s 9 UDP/TLS/RTP/SAVPF %s\r\nc=IN %s %s\r\n", m.kind, pts, family, a.candidate.Addr())
		if m.mid != "" {
			fmt.Fprintf(&body, "a=mid:%s\r\n", m.mid)
			mids = append(mids, m.mid)
		}
		fmt.Fprintf(&body, "a=recvonly\r\na=rtcp-mux\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:active\r\n", a.ufrag, a.pwd, a.fingerprint)
		fmt.Fprintf(&body, "a=rtpmap:%d %s\r\n", pt, m.rtpmap[pt])
		if f := m.fmtp[pt]; f != "" {
			fmt.Fprintf(&body, "a=fmtp:%d %s\r\n", pt, f)
		}
		spec := streamSpec{id: m.mid, kind: m.kind, pt: pt, rtxPT: rtxPT, clockRate: clockOf(m.rtpmap[pt])}
		for _, fb := range m.rtcpFb[pt] {
			switch {
			case fb == "nack":
				spec.nack = true
				fmt.Fprintf(&body, "a=rtcp-fb:%d nack\r\n", pt)
			case fb == "nack pli" || fb == "ccm fir":
				fmt.Fprintf(&body, "a=rtcp-fb:%d %s\r\n", pt, fb)
			case fb == "transport-cc" && a.twcc:
				fmt.Fprintf(&body, "a=rtcp-fb:%d transport-cc\r\n", pt)
			}
		}
		if rtxPT != 0 {
			fmt.Fprintf(&body, "a=rtpmap:%d %s\r\na=fmtp:%d apt=%d\r\n", rtxPT, m.rtpmap[rtxPT], rtxPT, pt)
		}
		if id, ok := m.extmap[twccURI]; ok && a.twcc {
			fmt.Fprintf(&body, "a=extmap:%d %s\r\n", id, twccURI)
			twccID = id
		}
		switch {
		case m.fid[0] != 0:
			spec.ssrc, spec.rtxSSRC = m.fid[0], m.fid[1]
		case len(m.ssrcs) > 0:
			spec.ssrc = m.ssrcs[0]
		}
		fmt.Fprintf(&body, "a=candidate:1 1 udp 2130706431 %s %d typ host\r\na=end-of-candidates\r\n", a.candidate.Addr(), a.candidate.Port())
		specs = append(specs, spec)
	}
	if o.bundle && len(mids) > 0 {
		w("a=group:BUNDLE %s", strings.Join(mids, " "))
	}
	w("a=msid-semantic: WMS")
	b.WriteString(body.String())
	return b.String(), specs, twccID
}

// pickCodec: the first payload type of the m-line whose rtpmap starts with prefix (e.g. "vp8/").
func pickCodec(m *sdpMedia, prefix string) (uint8, bool) {
	if prefix == "" {
		return 0, false
	}
	for _, pt := range m.pts {
		if strings.HasPrefix(strings.ToLower(m.rtpmap[pt]), prefix) {
			return pt, true
		}
	}
	return 0, false
}

func clockOf(rtpmap string) float64 {
	f := strings.Split(rtpmap, "/")
	if len(f) >= 2 {
		if n, err := strconv.Atoi(f[1]); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 90000
}
