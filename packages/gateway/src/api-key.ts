import crypto, { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

/** `crypto.hash` (Node 20.12+): one call, no Hash object per request; `createHash` before it. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;
const digest = (value: string): Buffer =>
  oneShot ? oneShot('sha256', value, 'buffer') : createHash('sha256').update(value).digest();
/** `Bearer <token>`, case-insensitive scheme, one space, a token without whitespace. */
const BEARER = /^Bearer (\S+)$/i;

/**
 * Lets a request through only with `Authorization: Bearer <key>`. Both sides are hashed first, so
 * the comparison is constant-time whatever the lengths; every refusal gets the same 401.
 */
export function requireApiKey(key: string): RequestHandler {
  const authorized = apiKeyMatcher(key);
  return (req, res, next) => {
    if (authorized(req.headers.authorization)) return next();
    res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'unauthorized' });
  };
}

/** Whether an `Authorization` header carries `Bearer <key>`, compared in constant time. */
export function apiKeyMatcher(key: string): (authorization: string | undefined) => boolean {
  const expected = digest(key);
  return (authorization) => {
    const presented = BEARER.exec(authorization ?? '')?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), expected);
  };
}
