import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signBody, verifySignature } from '../src/index.js';

const SECRET = 'proxy-secret-that-is-at-least-32-bytes!';
const NOW = 1_900_000_000_000;
const BODY = '{"event":"connect","identity":{"user":"alice"}}';

/** The README's verification in plain node:crypto, kept here so the README cannot drift from the scheme. */
function readmeVerify(secret: string, header: string | undefined, rawBody: string, now = Date.now()): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const [, t, v1] = match as unknown as [string, string, string];
  if (Math.abs(now - Number(t)) > 5 * 60_000) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

describe('signBody / verifySignature', () => {
  it('signs "<t>.<body>" with HMAC-SHA256 and verifies it', () => {
    const header = signBody(SECRET, BODY, NOW);
    const expected = createHmac('sha256', SECRET).update(`${NOW}.${BODY}`).digest('hex');
    expect(header).toBe(`t=${NOW},v1=${expected}`);
    expect(verifySignature(SECRET, header, BODY, { now: NOW + 1_000 })).toEqual({ ok: true, timestamp: NOW });
    expect(verifySignature(SECRET, header, Buffer.from(BODY), { now: NOW })).toEqual({ ok: true, timestamp: NOW });
    expect(readmeVerify(SECRET, header, BODY, NOW)).toBe(true);
  });

  it('names why a signature is refused: missing, malformed, stale, mismatch', () => {
    const header = signBody(SECRET, BODY, NOW);
    const at = { now: NOW };
    expect(verifySignature(SECRET, undefined, BODY, at)).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(SECRET, '', BODY, at)).toEqual({ ok: false, reason: 'missing' });
    for (const bad of ['nonsense', `t=${NOW}`, header.replace(/v1=/, 'v1=zz'), `v1=${'a'.repeat(64)}`, `t=abc,v1=${'a'.repeat(64)}`, `${header},t=1`]) {
      expect(verifySignature(SECRET, bad, BODY, at), bad).toEqual({ ok: false, reason: 'malformed' });
    }
    expect(verifySignature(SECRET, [header, header], BODY, at)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(SECRET, header, BODY, { now: NOW + 5 * 60_000 + 1 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, BODY, { now: NOW - 5 * 60_000 - 1 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, BODY, { now: NOW + 10_000, toleranceMs: 5_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, `${BODY} `, at)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(`${SECRET}x`, header, BODY, at)).toEqual({ ok: false, reason: 'mismatch' });
    // A timestamp moved forward with the old MAC: the timestamp is signed too.
    expect(verifySignature(SECRET, header.replace(`t=${NOW}`, `t=${NOW + 1}`), BODY, at)).toEqual({ ok: false, reason: 'mismatch' });
    expect(readmeVerify(SECRET, header, `${BODY} `, NOW)).toBe(false);
  });

  it('accepts any of several secrets (a rotation) and any of several v1 values, and skips unknown schemes', () => {
    const old = 'the-old-secret-also-at-least-32-bytes-long';
    const header = signBody(old, BODY, NOW);
    expect(verifySignature([SECRET, old], header, BODY, { now: NOW }).ok).toBe(true);
    expect(verifySignature([SECRET], header, BODY, { now: NOW }).ok).toBe(false);
    const both = `${signBody(SECRET, BODY, NOW)},v1=${header.split('v1=')[1]},v2=whatever`;
    expect(verifySignature(old, both, BODY, { now: NOW }).ok).toBe(true);
    expect(verifySignature(SECRET, both, BODY, { now: NOW }).ok).toBe(true);
  });
});
