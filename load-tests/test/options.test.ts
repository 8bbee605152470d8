import { describe, expect, it } from 'vitest';
import { LIMITS, parseCliArgs, parseRate, UsageError } from '../src/options.js';

describe('parseCliArgs()', () => {
  it('reads the documented example', () => {
    const o = parseCliArgs(['--url', 'http://host:8080', '--viewers', '500', '--duration', '60', '--ramp', '20/s', '--broadcast'])!;
    expect(o).toMatchObject({
      url: 'http://host:8080',
      viewers: 500,
      durationSec: 60,
      rampPerSec: 20,
      broadcast: true,
      broadcaster: 'ffmpeg',
      decoders: 2,
      processes: Math.ceil(500 / LIMITS.viewersPerProcess),
      freezeGapMs: 500,
      progress: true,
    });
    expect(o.streamId).toBeUndefined();
    expect(o.outDir).toBeUndefined();
  });

  it('takes --stream, --decoders, --out, --processes, --no-progress', () => {
    const o = parseCliArgs(['--url', 'https://x.example/', '--stream', 'abc_123', '--decoders', '0', '--out', '/tmp/r', '--processes', '3', '--no-progress'])!;
    expect(o).toMatchObject({ url: 'https://x.example', streamId: 'abc_123', broadcast: false, decoders: 0, outDir: '/tmp/r', processes: 3, progress: false });
  });

  it('never uses more processes than viewers', () => {
    expect(parseCliArgs(['--url', 'http://h', '--broadcast', '--viewers', '2', '--processes', '8'])!.processes).toBe(2);
  });

  it('takes --client sink, with sink processes of 500 viewers and --sink-cores', () => {
    const o = parseCliArgs(['--url', 'http://h', '--broadcast', '--client', 'sink', '--viewers', '1000', '--sink-cores', '1'])!;
    expect(o).toMatchObject({ client: 'sink', viewers: 1000, processes: 1000 / LIMITS.sinkViewersPerProcess, sinkCores: '1' });
    expect(parseCliArgs(['--url', 'http://h', '--broadcast'])!.client).toBe('werift');
    expect(parseCliArgs(['--url', 'http://h', '--broadcast', '--client', 'sink', '--sink-twcc', 'off'])!.sinkTwcc).toBe(false);
  });

  it('returns null for --help', () => {
    expect(parseCliArgs(['--help'])).toBeNull();
  });

  it.each([
    [['--viewers', '5'], /--url/],
    [['--url', 'http://h'], /--stream ID or --broadcast/],
    [['--url', 'ftp://h', '--broadcast'], /http/],
    [['--url', 'http://h', '--broadcast', '--viewers', '-1'], /--viewers/],
    [['--url', 'http://h', '--broadcast', '--viewers', String(LIMITS.viewers + 1)], /--viewers/],
    [['--url', 'http://h', '--broadcast', '--duration', '0'], /--duration/],
    [['--url', 'http://h', '--stream', 'a b'], /--stream/],
    [['--url', 'http://h', '--broadcast', '--broadcaster', 'obs'], /--broadcaster/],
    [['--url', 'http://h', '--broadcast', '--bogus'], /bogus/],
    [['--url', 'http://h', '--broadcast', '--client', 'pion'], /--client/],
    [['--url', 'http://h', '--broadcast', '--sink-cores', '1'], /--sink-cores/],
    [['--url', 'http://h', '--broadcast', '--client', 'sink', '--sink-cores', 'one'], /--sink-cores/],
    [['--url', 'http://h', '--broadcast', '--sink-twcc', 'off'], /--sink-twcc/],
  ])('rejects %j with a UsageError', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(UsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });
});

describe('parseRate()', () => {
  it('reads 20/s, 20 and 600/min', () => {
    expect(parseRate('20/s')).toBe(20);
    expect(parseRate('20')).toBe(20);
    expect(parseRate('600/min')).toBe(10);
    expect(parseRate('0.5/s')).toBe(0.5);
  });

  it('rejects zero, junk and rates above the limit', () => {
    expect(() => parseRate('0/s')).toThrow(UsageError);
    expect(() => parseRate('fast')).toThrow(UsageError);
    expect(() => parseRate(`${LIMITS.rampPerSec + 1}/s`)).toThrow(UsageError);
  });
});
