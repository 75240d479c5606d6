import { createHmac, timingSafeEqual } from 'node:crypto';

/** The request header carrying `t=<ms>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'authsocket-signature';

/** How far a signature's `t` may be from the verifier's clock, either way, by default: 5 minutes. */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 5 * 60_000;

/** Why a signature was refused: stable values for logs and metrics. */
export type SignatureFailure = 'missing' | 'malformed' | 'stale' | 'mismatch';

export type SignatureCheck = { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: SignatureFailure };

export interface VerifyOptions {
  /** The verifier's time, ms since the epoch. Default `Date.now()`. */
  now?: number;
  /** Largest accepted distance between `t` and `now`, in ms. Default 5 minutes. */
  toleranceMs?: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function hmac(secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** The `authsocket-signature` value for `body` (the exact bytes sent) at `now` (ms). */
export function signBody(secret: string, body: string | Uint8Array, now: number = Date.now()): string {
  const timestamp = Math.floor(now);
  return `t=${timestamp},v1=${hmac(secret, timestamp, body).toString('hex')}`;
}

/**
 * Checks an `authsocket-signature` header against the raw request body, in constant time. `secret`
 * may be several keys (during a rotation: the new one and the old one); any `v1` matching any key
 * passes. Read the body as bytes and verify before parsing it: a re-serialised body does not match.
 */
export function verifySignature(
  secret: string | readonly string[],
  header: string | readonly string[] | null | undefined,
  body: string | Uint8Array,
  { now = Date.now(), toleranceMs = DEFAULT_SIGNATURE_TOLERANCE_MS }: VerifyOptions = {},
): SignatureCheck {
  if (header === undefined || header === null || header.length === 0) return { ok: false, reason: 'missing' };
  if (typeof header !== 'string') {
    // As some frameworks hand over a header: one value is that value, several are a forged extra header.
    if (header.length > 1) return { ok: false, reason: 'malformed' };
    return verifySignature(secret, header[0], body, { now, toleranceMs });
  }
  let timestamp: number | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) return { ok: false, reason: 'malformed' };
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,16}$/.test(value)) return { ok: false, reason: 'malformed' };
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!SHA256_HEX.test(value)) return { ok: false, reason: 'malformed' };
      candidates.push(Buffer.from(value, 'hex'));
    }
    // Other keys (a future v2) are skipped, so a verifier keeps working while the gateway adds schemes.
  }
  if (timestamp === undefined || candidates.length === 0) return { ok: false, reason: 'malformed' };
  if (Math.abs(now - timestamp) > toleranceMs) return { ok: false, reason: 'stale' };
  const secrets = typeof secret === 'string' ? [secret] : secret;
  let matched = false;
  for (const key of secrets) {
    const expected = hmac(key, timestamp, body);
    // Every candidate is compared, so the time taken does not say which one matched.
    for (const candidate of candidates) matched = timingSafeEqual(expected, candidate) || matched;
  }
  return matched ? { ok: true, timestamp } : { ok: false, reason: 'mismatch' };
}
