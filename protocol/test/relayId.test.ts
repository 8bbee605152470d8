import { describe, expect, it } from 'vitest';
import { relayIdFor } from '../src/node/relayId.js';
import { NodeId } from '../src/messages.js';
import { isValid } from '../src/validate.js';

describe('relayIdFor()', () => {
  it('is the subject and a random suffix, a valid NodeId whatever the subject', () => {
    expect(relayIdFor('alice')).toMatch(/^alice-[0-9a-f]{6}$/);
    expect(relayIdFor('alice')).not.toBe(relayIdFor('alice'));
    const odd = relayIdFor(`bob smith/${'x'.repeat(200)}`);
    expect(odd).toMatch(/^bob-smith-x+-[0-9a-f]{6}$/);
    expect(isValid(NodeId, odd)).toBe(true);
  });
});
