package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The receive path of every viewer of a sink process: one goroutine polls one epoll set
// holding all the viewers' UDP sockets (level-triggered) and reads each ready socket with
// recvmmsg. A server sends each packet to every viewer in turn, so one epoll_wait returns
// many sockets, and a socket costs one recvmmsg per round: no goroutine per socket, no read
// until EAGAIN, no allocation per packet.
//
// With a poll interval, the poller sleeps between rounds so that packets pile up: a round
// reads a few packets per socket with one recvmmsg. The kernel stamps each datagram's
// arrival (SO_TIMESTAMPNS), so jitter, delay and the congestion-control feedback still see
// when a packet arrived, not when the round read it; only NACKs leave up to one interval later.

type udpSock struct {
	fd    int
	local netip.AddrPort
}

func openUDP(ip netip.Addr) (*udpSock, error) {
	family := syscall.AF_INET
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Addr: ip.As4()}
	if ip.Is6() {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// Arrival times from the kernel (see above); without them the poll interval would show as
	// jitter. And the count of datagrams the kernel dropped at this socket (its buffer was full:
	// the sink fell behind), so that the sink's own losses are not blamed on the server.
	for _, opt := range []int{syscall.SO_TIMESTAMPNS, soRxqOvfl} {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, 1); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	s := &udpSock{fd: fd}
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		s.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		s.local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return s, nil
}

func sockaddrOf(ap netip.AddrPort) syscall.Sockaddr {
	if ap.Addr().Is4() {
		return &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

// writeTo sends without blocking; a full socket buffer drops the datagram, as UDP may.
func (s *udpSock) writeTo(b []byte, to syscall.Sockaddr) (int, error) {
	if to == nil {
		return 0, errors.New("no remote address")
	}
	if err := syscall.Sendto(s.fd, b, 0, to); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *udpSock) close() { _ = syscall.Close(s.fd) }

// batchReader reads up to len(bufs) datagrams per system call (recvmmsg).
type batchReader struct {
	bufs  [][]byte
	names []syscall.RawSockaddrAny
	iovs  []syscall.Iovec
	hdrs  []mmsghdr
	ctrl  [][]byte
	// Results of the last read: sizes, kernel arrival times (wall clock, ms; 0: none), and the
	// socket's drop counter (cumulative; -1: not reported).
	n      int
	sizes  []int
	wallMs []float64
	drops  []int64
}

// SO_RXQ_OVFL (<asm-generic/socket.h>): the socket's dropped-datagram counter with each read.
const soRxqOvfl = 40

// Room for SCM_TIMESTAMPNS (a struct timespec) and SO_RXQ_OVFL (a uint32).
var ctrlSpace = syscall.CmsgSpace(16) + syscall.CmsgSpace(4)

// mmsghdr is struct mmsghdr from <sys/socket.h> (Linux, 64-bit).
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

func newBatchReader(batch, size int) *batchReader {
	r := &batchReader{bufs: make([][]byte, batch), names: make([]syscall.RawSockaddrAny, batch),
		iovs: make([]syscall.Iovec, batch), hdrs: make([]mmsghdr, batch), sizes: make([]int, batch),
		ctrl: make([][]byte, batch), wallMs: make([]float64, batch), drops: make([]int64, batch)}
	for i := range r.bufs {
		r.ctrl[i] = make([]byte, ctrlSpace)
		r.hdrs[i].hdr.Control = &r.ctrl[i][0]
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.Iovlen = 1
	}
	return r
}

// read takes what is queued on fd without blocking (n = 0 when nothing is).
func (r *batchReader) read(fd int) error {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].hdr.Flags = 0
		r.hdrs[i].hdr.SetControllen(ctrlSpace)
	}
	r.n = 0
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
		syscall.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
	case syscall.EAGAIN, syscall.EINTR:
		return nil
	default:
		return errno
	}
	r.n = int(n)
	for i := 0; i < r.n; i++ {
		r.sizes[i] = int(r.hdrs[i].len)
		r.wallMs[i], r.drops[i] = parseControl(r.ctrl[i][:r.hdrs[i].hdr.Controllen])
	}
	return nil
}

// parseControl reads SCM_TIMESTAMPNS (wall-clock ms, 0 if absent) and SO_RXQ_OVFL (the
// socket's cumulative drops, -1 if absent) from a control buffer.
func parseControl(ctrl []byte) (wallMs float64, drops int64) {
	drops = -1
	for len(ctrl) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if h.Len < syscall.SizeofCmsghdr || int(h.Len) > len(ctrl) {
			return
		}
		data := ctrl[syscall.CmsgLen(0):h.Len]
		switch {
		case h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && len(data) >= 16:
			ts := (*syscall.Timespec)(unsafe.Pointer(&data[0]))
			wallMs = float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
		case h.Level == syscall.SOL_SOCKET && h.Type == soRxqOvfl && len(data) >= 4:
			drops = int64(*(*uint32)(unsafe.Pointer(&data[0])))
		}
		next := syscall.CmsgSpace(int(h.Len) - syscall.CmsgLen(0))
		if next > len(ctrl) {
			return
		}
		ctrl = ctrl[next:]
	}
	return
}

// from is the sender of datagram i.
func (r *batchReader) from(i int) netip.AddrPort {
	sa := &r.names[i]
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), netPort(&p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), netPort(&p.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}

// poller owns the epoll set and the one batch buffer all sockets are read into.
type poller struct {
	epfd     int
	mu       sync.Mutex
	peers    map[int32]*peer
	reader   *batchReader
	interval time.Duration
}

// newPoller: interval 0 wakes up for every ready socket; more batches reads (see above).
func newPoller(interval time.Duration) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{epfd: epfd, peers: map[int32]*peer{}, reader: newBatchReader(readBatch, udpBufSize), interval: interval}, nil
}

func (pl *poller) add(fd int, p *peer) error {
	pl.mu.Lock()
	pl.peers[int32(fd)] = p
	pl.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	return syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (pl *poller) remove(fd int) {
	_ = syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	pl.mu.Lock()
	delete(pl.peers, int32(fd))
	pl.mu.Unlock()
}

// run never returns: the process exits around it.
func (pl *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	timeout := -1
	if pl.interval > 0 {
		timeout = 0
	}
	next := time.Now()
	for {
		if pl.interval > 0 {
			next = next.Add(pl.interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else {
				next = time.Now()
			}
		}
		for {
			n, err := syscall.EpollWait(pl.epfd, events, timeout)
			if err != nil {
				break // EINTR
			}
			nowNs, wall := monoNs(), wallMs()
			for i := 0; i < n; i++ {
				fd := events[i].Fd
				pl.mu.Lock()
				p := pl.peers[fd]
				pl.mu.Unlock()
				if p != nil {
					p.onReadable(pl.reader, int(fd), nowNs, wall)
				}
			}
			// A full event list: more sockets are ready than it holds.
			if n < len(events) {
				break
			}
			if len(events) < 8192 {
				events = make([]syscall.EpollEvent, 2*len(events))
			}
		}
	}
}
