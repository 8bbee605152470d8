import { describe, expect, it } from 'vitest';
import { bindingRequest, bindingSuccess, successTransactionId, verifyIntegrity } from '../src/gateway/stun.js';

describe('stun', () => {
  it("a stand-in's answer to a binding request carries its transaction and verifies with the password", () => {
    const { message, transactionId } = bindingRequest('ufrag1', 'pwd-of-the-transport');
    expect(message.readUInt16BE(2) + 20).toBe(message.length);
    const answer = bindingSuccess(message, 'pwd-of-the-transport', { address: '127.0.0.1', port: 40000 })!;
    expect(successTransactionId(answer)?.equals(transactionId)).toBe(true);
    expect(verifyIntegrity(answer, 'pwd-of-the-transport')).toBe(true);
    expect(verifyIntegrity(answer, 'another password')).toBe(false);
  });

  it('the request carries MESSAGE-INTEGRITY with the password (what mediasoup checks)', () => {
    const { message } = bindingRequest('ufrag1', 'pw');
    // verifyIntegrity reads any message's MESSAGE-INTEGRITY, the request's too.
    expect(verifyIntegrity(message, 'pw')).toBe(true);
    expect(verifyIntegrity(message, 'px')).toBe(false);
  });
});
