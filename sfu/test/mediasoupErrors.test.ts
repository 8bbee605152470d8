import { describe, expect, it } from 'vitest';
import { CascadeError } from '@cascade/protocol';
import { fromMediasoup } from '../src/mediasoupErrors.js';

describe('fromMediasoup', () => {
  it('maps what the client chose wrongly to the input code, with the method suffix cut', () => {
    const bad = fromMediasoup(new TypeError('invalid rtpParameters [method:transport.produce]'), 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
    expect(bad.code).toBe('CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
    expect(bad.message).toMatch(/invalid rtpParameters$/);
    // Found by the fuzz test: a second producer with mid 0 on one transport.
    const clash = fromMediasoup(new Error('MID already exists in RTP listener [mid:0] [method:transport.produce]'), 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
    expect(clash.code).toBe('CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
    expect(clash.message).toMatch(/MID already exists in RTP listener \[mid:0\]$/);
    const unsupported = Object.assign(new Error('no codec'), { name: 'UnsupportedError' });
    expect(fromMediasoup(unsupported, 'CASCADE_ERR_MEDIA_CANNOT_CONSUME').code).toBe('CASCADE_ERR_MEDIA_CANNOT_CONSUME');
  });

  it('keeps coded errors and calls anything else internal', () => {
    const coded = new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', 'x');
    expect(fromMediasoup(coded, 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS')).toBe(coded);
    expect(fromMediasoup(new Error('Channel closed'), 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS').code).toBe('CASCADE_ERR_INTERNAL');
  });
});
