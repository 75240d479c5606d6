import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Lets a request through only with `Authorization: Bearer <key>`. Both sides are hashed first, so
 * the comparison is constant-time whatever the lengths; every refusal gets the same 401.
 */
export function requireApiKey(key: string): RequestHandler {
  const expected = digest(key);
  return (req, res, next) => {
    const presented = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return next();
    res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'unauthorized' });
  };
}
