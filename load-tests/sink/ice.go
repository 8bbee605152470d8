package main

// ICE: the sink's STUN checks and answers (controlling against ICE-lite, controlled against
// full ICE), the pair it picks, consent checks.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun"
)

// pickCandidate: the server's first IPv4 candidate (loopback first), else its first one that
// is not link-local. The sink runs next to the servers it loads, so any of them is reachable.
func pickCandidate(cands []netip.AddrPort) netip.AddrPort {
	for _, c := range cands {
		if c.Addr().IsLoopback() {
			return c
		}
	}
	for _, c := range cands {
		if c.Addr().Is4() {
			return c
		}
	}
	for _, c := range cands {
		if !c.Addr().IsLinkLocalUnicast() {
			return c
		}
	}
	return cands[0]
}

var sourceCache sync.Map // netip.Addr → netip.Addr

// sourceFor: the local address the kernel sends from towards `to` (a UDP "connect" sends nothing).
func sourceFor(to netip.AddrPort) (netip.Addr, error) {
	if v, ok := sourceCache.Load(to.Addr()); ok {
		return v.(netip.Addr), nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	sourceCache.Store(to.Addr(), ip)
	return ip, nil
}

// setRemoteLocked: media and RTCP go to the pair ICE selected.
func (p *peer) setRemoteLocked(ap netip.AddrPort) {
	if ap != p.remote {
		p.remote, p.remoteSA = ap, sockaddrOf(ap)
	}
}

func (p *peer) handleSTUNLocked(b []byte, from netip.AddrPort, nowNs int64) {
	p.c.stunIn++
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return
	}
	switch m.Type {
	case stun.BindingRequest:
		if err := stun.NewShortTermIntegrity(p.localPwd).Check(m); err != nil {
			return
		}
		res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
			stun.NewShortTermIntegrity(p.localPwd), stun.Fingerprint)
		if err == nil {
			_, _ = p.sock.writeTo(res.Raw, sockaddrOf(from))
		}
		// The controlling agent (Janus) nominated this pair: media goes there.
		if !p.controlling && m.Contains(stun.AttrUseCandidate) {
			p.setRemoteLocked(from)
			p.iceConnectedLocked(nowNs)
		}
	case stun.BindingSuccess:
		if !p.pending[m.TransactionID] {
			return
		}
		delete(p.pending, m.TransactionID)
		if err := stun.NewShortTermIntegrity(p.rp.icePwd).Check(m); err != nil {
			return
		}
		if !p.iceOK {
			p.setRemoteLocked(from)
		}
		p.iceConnectedLocked(nowNs)
	}
}

func (p *peer) iceConnectedLocked(nowNs int64) {
	if p.iceOK {
		return
	}
	p.iceOK = true
	p.iceNs = nowNs
	p.nextConsent = nowNs + consentIntervalNs
	for k := range p.pending {
		delete(p.pending, k)
	}
	if !p.dtlsStarted {
		p.dtlsStarted = true
		go p.runDTLS()
	}
}

func (p *peer) sendCheckLocked(nowNs int64) {
	ctrl := stun.AttrICEControlled
	if p.controlling {
		ctrl = stun.AttrICEControlling
	}
	var prio [4]byte
	binary.BigEndian.PutUint32(prio[:], 1853824767) // peer-reflexive, as RFC 8445 7.1.1 asks
	setters := []stun.Setter{stun.BindingRequest, stun.TransactionID,
		stun.NewUsername(p.rp.iceUfrag + ":" + p.localUfrag),
		stun.RawAttribute{Type: stun.AttrPriority, Value: prio[:]},
		stun.RawAttribute{Type: ctrl, Value: p.tieBreaker[:]}}
	if p.controlling {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(p.rp.icePwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return
	}
	if !p.iceOK {
		p.pending[m.TransactionID] = true
	}
	p.checksSent++
	p.c.checks++
	_, _ = p.sock.writeTo(m.Raw, p.remoteSA)
	p.nextCheck = nowNs + checkIntervalNs
}
