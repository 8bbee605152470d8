import { describe, expect, it } from 'vitest';
import { isVp8KeyframeStart } from '../src/vp8.js';

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
