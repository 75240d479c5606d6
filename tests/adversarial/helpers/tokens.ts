import { createHmac, type KeyObject } from 'node:crypto';
import { type JWTHeaderParameters, type JWTPayload, SignJWT } from 'jose';

/** The gateway's HS256 secret in every test: fixed, as `AUTHSOCKET_JWT_SECRET` is in production. */
export const SECRET = 'adversarial-suite-secret-of-at-least-32-bytes';
export const ISSUER = 'https://id.example';
export const AUDIENCE = 'app';

const encoder = new TextEncoder();
export const secretKey = encoder.encode(SECRET);

export const b64url = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Whole seconds of `ms`, as JWT times are written. */
export const seconds = (ms: number): number => Math.floor(ms / 1000);

export interface MintOptions {
  /** The gateway's `now` in ms (its clock, not the machine's). */
  readonly now: number;
  readonly sub?: string;
  /** `exp` this many seconds after `now`; `null` leaves `exp` out. Default 3600. */
  readonly expiresIn?: number | null;
  /** Extra or overriding claims (`iss`/`aud` included). */
  readonly claims?: JWTPayload;
  readonly header?: Partial<JWTHeaderParameters>;
  /** Signing key: the gateway's secret by default. */
  readonly key?: Uint8Array | CryptoKey | KeyObject;
}

/** A signed JWT for `sub` on the gateway's clock, with the suite's issuer and audience. */
export async function mint({
  now,
  sub = 'alice',
  expiresIn = 3600,
  claims = {},
  header = {},
  key = secretKey,
}: MintOptions): Promise<string> {
  const payload: JWTPayload = { sub, iss: ISSUER, aud: AUDIENCE, iat: seconds(now), ...claims };
  if (expiresIn !== null) payload.exp = seconds(now) + expiresIn;
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', ...header } as JWTHeaderParameters).sign(key);
}

/** A JWT assembled by hand (for `alg: none` and friends that no library will sign). */
export function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`;
}

/** HS256 over any header and payload, by hand: for headers `jose` refuses to sign (`crit`, `b64`). */
export function hs256(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string = SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
