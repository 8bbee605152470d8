package main

// The DTLS-SRTP handshake over the ICE socket and the SRTP keys it yields.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/srtp/v2"
)

// fingerprint of the shared certificate, "AB:CD:…".
func certFingerprint(c *dtls.Config) (string, error) {
	if len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return "", errors.New("no certificate")
	}
	sum := sha256.Sum256(c.Certificates[0].Certificate[0])
	out := make([]byte, 0, len(sum)*3)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, fmt.Sprintf("%02X", b)...)
	}
	return string(out), nil
}

func (p *peer) runDTLS() {
	cfg := &dtls.Config{
		Certificates:           p.cfg.cert.Certificates,
		SRTPProtectionProfiles: p.cfg.profiles,
		InsecureSkipVerify:     true,
		ExtendedMasterSecret:   dtls.RequestExtendedMasterSecret,
		FlightInterval:         250 * time.Millisecond,
		MTU:                    1200,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			sum := sha256.Sum256(raw[0])
			if string(sum[:]) != string(p.rp.fingerprint) {
				return errors.New("server certificate does not match the signalled fingerprint")
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.dtlsTimeout)
	defer cancel()
	conn, err := dtls.ClientWithContext(ctx, p.pipe, cfg)
	if err == nil {
		err = p.keysFrom(conn)
	}
	if err != nil {
		// Coded before anyone sees it: the join waiting on dtlsDone reports this, not a timeout.
		err = &codedError{code: "CASCADE_ERR_LOADTEST_DTLS", msg: "DTLS handshake failed: " + err.Error()}
	}
	p.mu.Lock()
	p.dtlsErr = err
	if err == nil {
		p.dtls = conn
		p.dtlsNs = monoNs()
		p.nextRR = p.dtlsNs + rrIntervalNs
		p.nextTwcc = p.dtlsNs + twccIntervalNs
	}
	closed := p.closed
	p.mu.Unlock()
	close(p.dtlsDone)
	if err != nil {
		if !closed {
			p.fail(err)
		}
		return
	}
	if closed {
		conn.Close()
		return
	}
	// Nothing but alerts comes this way once keys are set; a close_notify ends the viewer.
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				p.mu.Lock()
				closed := p.closed
				p.mu.Unlock()
				if !closed {
					p.fail(&codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "the server closed DTLS"})
				}
				return
			}
		}
	}()
}

func (p *peer) keysFrom(conn *dtls.Conn) error {
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("no SRTP profile negotiated")
	}
	profile := srtp.ProtectionProfile(prof)
	sc := &srtp.Config{Profile: profile}
	state := conn.ConnectionState()
	if err := sc.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		return err
	}
	in, err := srtp.CreateContext(sc.Keys.RemoteMasterKey, sc.Keys.RemoteMasterSalt, profile)
	if err != nil {
		return err
	}
	out, err := srtp.CreateContext(sc.Keys.LocalMasterKey, sc.Keys.LocalMasterSalt, profile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srtpIn, p.srtpOut = in, out
	switch profile {
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		p.tagLen, p.profile = 10, "AES_CM_128_HMAC_SHA1_80"
	case srtp.ProtectionProfileAes128CmHmacSha1_32:
		p.tagLen, p.profile = 4, "AES_CM_128_HMAC_SHA1_32"
	case srtp.ProtectionProfileAeadAes128Gcm:
		p.tagLen, p.profile = 16, "AEAD_AES_128_GCM"
	default:
		p.profile = fmt.Sprintf("0x%04x", uint16(profile))
	}
	return nil
}

// waitDTLS blocks until the handshake has ended, or ctx ends.
func (p *peer) waitDTLS(ctx context.Context) error {
	select {
	case <-p.dtlsDone:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.dtlsErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dtlsPipe is the net.Conn the DTLS handshake runs over: the read loop feeds it the DTLS
// records it demultiplexes from the ICE socket, writes go straight to the selected pair.
// Read deadlines work: pion/dtls ends a handshake whose context expired by setting one in the
// past, and waits for the read to return.
type dtlsPipe struct {
	p        *peer
	in       chan []byte
	done     chan struct{}
	doneOnce sync.Once

	dlMu    sync.Mutex
	dlCh    chan struct{} // closed once the read deadline has passed
	dlTimer *time.Timer
}

func (d *dtlsPipe) deadline() chan struct{} {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	if d.dlCh == nil {
		d.dlCh = make(chan struct{})
	}
	return d.dlCh
}

func (d *dtlsPipe) Read(b []byte) (int, error) {
	dl := d.deadline()
	select {
	case pkt := <-d.in:
		return copy(b, pkt), nil
	case <-d.done:
		return 0, net.ErrClosed
	case <-dl:
		return 0, os.ErrDeadlineExceeded
	}
}

func (d *dtlsPipe) Write(b []byte) (int, error) {
	d.p.mu.Lock()
	sa := d.p.remoteSA
	d.p.mu.Unlock()
	return d.p.sock.writeTo(b, sa)
}

func (d *dtlsPipe) Close() error {
	d.doneOnce.Do(func() { close(d.done) })
	return nil
}

func (d *dtlsPipe) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(d.p.sock.local) }

func (d *dtlsPipe) RemoteAddr() net.Addr {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	return net.UDPAddrFromAddrPort(d.p.remote)
}

func (d *dtlsPipe) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

func (d *dtlsPipe) SetReadDeadline(t time.Time) error {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	if d.dlTimer != nil {
		d.dlTimer.Stop()
		d.dlTimer = nil
	}
	if d.dlCh == nil {
		d.dlCh = make(chan struct{})
	}
	select {
	case <-d.dlCh: // expired earlier: a new deadline starts afresh
		d.dlCh = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return nil
	}
	ch := d.dlCh
	expire := func() {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	if wait := time.Until(t); wait <= 0 {
		expire()
	} else {
		d.dlTimer = time.AfterFunc(wait, func() {
			d.dlMu.Lock()
			defer d.dlMu.Unlock()
			expire()
		})
	}
	return nil
}

func (d *dtlsPipe) SetWriteDeadline(time.Time) error { return nil }
