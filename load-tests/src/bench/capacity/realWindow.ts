/**
 * The real-path ramp's arithmetic, free of I/O so it can be unit-tested: what sink viewers
 * received over a window (from two snapshots of the fleet's cumulative totals) and the
 * server's CPU cost of a join.
 */

/** The part of the fleet's totals a window needs (FleetTotals). */
export interface WindowTotals {
  connected: number;
  sink: { packets: number; expected: number; lost: number; bytes: number; decryptFail: number; stalled: number; socketDrops: number };
}

export interface MediaWindow {
  /** Viewers connected at the end of the window. */
  viewers: number;
  /** Of them, viewers that had received nothing for over a second at the end. */
  silentViewers: number;
  /** Packets expected and lost over the window, audio and video (after NACK repair). */
  expected: number;
  lost: number;
  /** lost / expected; a silent viewer counts as losing what a receiving one expected. */
  loss: number;
  /** Datagrams the kernel dropped at the sinks' full sockets: taken out of `lost` (the load generator's, not the server's). */
  sinkDrops: number;
  ppsPerViewer: number;
  kbpsPerViewer: number;
  /** Sampled decryptions that failed in the window (should be 0: keys and packets are right). */
  decryptFail: number;
}

/**
 * Media over a window of `seconds` between snapshots `a` and `b`. Loss comes from sequence
 * gaps, minus what the kernel dropped at the sinks' own sockets; a viewer that receives
 * nothing shows no gap at all, so it is counted as having lost what a receiving viewer expected.
 */
export function windowMedia(a: WindowTotals, b: WindowTotals, seconds: number): MediaWindow {
  const viewers = b.connected;
  const silent = Math.min(viewers, Math.max(0, b.sink.stalled));
  const receiving = viewers - silent;
  const dExpected = Math.max(0, b.sink.expected - a.sink.expected);
  const sinkDrops = Math.max(0, b.sink.socketDrops - a.sink.socketDrops);
  const dLost = Math.max(0, b.sink.lost - a.sink.lost - sinkDrops);
  const typical = receiving > 0 ? dExpected / receiving : 0;
  const expected = dExpected + silent * typical;
  const lost = Math.min(expected, dLost + silent * typical);
  const per = receiving > 0 && seconds > 0 ? 1 / (receiving * seconds) : 0;
  return {
    viewers,
    silentViewers: silent,
    expected,
    lost,
    loss: expected > 0 ? lost / expected : silent > 0 ? 1 : 0,
    sinkDrops,
    ppsPerViewer: (b.sink.packets - a.sink.packets) * per,
    kbpsPerViewer: ((b.sink.bytes - a.sink.bytes) * 8 * per) / 1000,
    decryptFail: b.sink.decryptFail - a.sink.decryptFail,
  };
}

/**
 * Server CPU per join (ms) while `joins` viewers joined over `seconds`: what it used above its
 * steady state (`steadyCpu`, share of a core, averaged over the phase). ICE, the DTLS handshake,
 * the signalling and the consumers' creation; never negative.
 */
export function joinCostMs(o: { cpuSeconds: number; seconds: number; steadyCpu: number; joins: number }): number | null {
  if (o.joins <= 0 || o.seconds <= 0) return null;
  return (Math.max(0, o.cpuSeconds - o.steadyCpu * o.seconds) / o.joins) * 1000;
}
