import { describe, expect, it } from 'vitest';
import { isVp8KeyframeStart, vp8KeyframeSize } from '../src/vp8.js';

describe('isVp8KeyframeStart()', () => {
  it('reads the P bit after a descriptor with a 15-bit picture id', () => {
    // X=1 S=1 PID=0 | I=1 | M=1 picture id (2 bytes) | payload header byte
    expect(isVp8KeyframeStart(Uint8Array.from([0x90, 0x80, 0x81, 0x23, 0x10]))).toBe(true);
    expect(isVp8KeyframeStart(Uint8Array.from([0x90, 0x80, 0x81, 0x23, 0x11]))).toBe(false);
  });
  it('reads the P bit after a minimal descriptor', () => {
    expect(isVp8KeyframeStart(Uint8Array.from([0x10, 0x9c]))).toBe(true);
    expect(isVp8KeyframeStart(Uint8Array.from([0x10, 0x9d]))).toBe(false);
  });
  it('is false for continuation packets and later partitions', () => {
    expect(isVp8KeyframeStart(Uint8Array.from([0x00, 0x00]))).toBe(false);
    expect(isVp8KeyframeStart(Uint8Array.from([0x11, 0x00]))).toBe(false);
    expect(isVp8KeyframeStart(Uint8Array.from([0x90]))).toBe(false);
  });
});

describe('vp8KeyframeSize()', () => {
  // X=1 S=1 PID=0 | I=1 | 15-bit picture id | frame tag (key frame, 3 bytes) | start code | 320 x 180 (scale bits set, ignored)
  const key = [0x90, 0x80, 0x81, 0x23, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0xb4, 0xc0];
  it("reads a key frame's width and height, without the scaling bits", () => {
    expect(vp8KeyframeSize(Uint8Array.from(key))).toEqual({ width: 320, height: 180 });
  });
  it('is undefined for an inter frame, a bad start code, a short packet or a continuation', () => {
    expect(vp8KeyframeSize(Uint8Array.from(key.map((b, i) => (i === 4 ? b | 0x01 : b))))).toBeUndefined();
    expect(vp8KeyframeSize(Uint8Array.from(key.map((b, i) => (i === 8 ? 0x02 : b))))).toBeUndefined();
    expect(vp8KeyframeSize(Uint8Array.from(key.slice(0, 12)))).toBeUndefined();
    expect(vp8KeyframeSize(Uint8Array.from([0x00, ...key.slice(1)]))).toBeUndefined();
  });
});
