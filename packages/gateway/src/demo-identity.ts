import { type Clock, type Gateway, RevokedError, TokenError } from '@authsocket/server';
import express, { type Request, type Response, Router } from 'express';
import { SignJWT } from 'jose';
import { DEMO_USERS, UNKNOWN_USER_HASH } from './demo-users.js';
import { HttpError } from './http-errors.js';
import type { Logger } from './logger.js';
import { verifyPassword } from './password-hash.js';

/** Short on purpose, so the demo shows in-band refresh within a couple of minutes. */
export const DEMO_TOKEN_TTL_SECONDS = 120;
const MAX_FIELD_LENGTH = 1_024;

export interface DemoIdentityOptions {
  /** The gateway's HS256 secret: tokens issued here are the ones the gateway verifies. */
  readonly secret: string;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** The gateway, whose token check (revocation included) decides what may be refreshed. */
  readonly gateway: Pick<Gateway, 'verifyToken'>;
  readonly logger: Logger;
  readonly clock: Clock;
}

interface IssuedToken {
  readonly user: string;
  readonly token: string;
  /** ms since the epoch */
  readonly expiresAt: number;
}

/**
 * A stand-in identity provider for the demo: `POST /auth/login` checks a demo user's password and
 * issues a 2-minute HS256 JWT; `POST /auth/refresh` trades a still-valid one for a fresh one (or,
 * with `{"expiresIn": seconds}`, for a shorter-lived one).
 */
export function createDemoIdentity(options: DemoIdentityOptions): Router {
  const { secret, issuer, audience, gateway, logger, clock } = options;
  const key = new TextEncoder().encode(secret);

  async function issue(user: string, ttlSeconds = DEMO_TOKEN_TTL_SECONDS): Promise<IssuedToken> {
    const iat = Math.floor(clock.now() / 1000);
    const exp = iat + ttlSeconds;
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user).setIssuedAt(iat);
    if (issuer !== undefined) jwt.setIssuer(issuer);
    if (audience !== undefined) jwt.setAudience(audience);
    const token = await jwt.setExpirationTime(exp).sign(key);
    return { user, token, expiresAt: exp * 1000 };
  }

  const router = Router();
  const json = express.json({ limit: '4kb' });

  router.post('/auth/login', json, async (req, res) => {
    const { username, password } = credentials(req);
    // Unknown users cost the same scrypt work as a wrong password: timing says nothing.
    const known = DEMO_USERS.get(username);
    const valid = await verifyPassword(password, known ?? UNKNOWN_USER_HASH);
    if (!known || !valid) {
      logger.info({ reason: known ? 'wrong_password' : 'unknown_user' }, 'demo login refused');
      return void res.status(401).json({ error: 'invalid username or password' });
    }
    logger.info({ user: username }, 'demo login');
    sendToken(res, await issue(username));
  });

  router.post('/auth/refresh', json, async (req, res) => {
    const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const user = bearer === undefined ? undefined : await refreshableUser(bearer);
    if (user === undefined) {
      return void res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'unauthorized' });
    }
    sendToken(res, await issue(user, requestedTtl(req)));
  });

  /** The user of a valid, unexpired, unrevoked token of a demo user; undefined otherwise. */
  async function refreshableUser(token: string): Promise<string | undefined> {
    try {
      const verified = await gateway.verifyToken(token);
      return DEMO_USERS.has(verified.user) ? verified.user : undefined;
    } catch (error) {
      if (error instanceof TokenError || error instanceof RevokedError) {
        logger.info({ reason: error instanceof TokenError ? error.reason : 'revoked' }, 'demo refresh refused');
        return undefined;
      }
      throw error;
    }
  }

  return router;
}

/**
 * `{"expiresIn": seconds}` in a refresh body asks for a shorter-lived token (1 to 120 s), so the demo
 * can show a token running out without waiting two minutes. No body: the usual two minutes.
 */
function requestedTtl(req: Request): number {
  const body: unknown = req.body;
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && !Object.hasOwn(body, 'expiresIn'))) {
    return DEMO_TOKEN_TTL_SECONDS;
  }
  const expiresIn = (body as { expiresIn?: unknown }).expiresIn;
  if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > DEMO_TOKEN_TTL_SECONDS) {
    throw new HttpError(400, `expiresIn must be a whole number of seconds from 1 to ${DEMO_TOKEN_TTL_SECONDS}`);
  }
  return expiresIn;
}

function credentials(req: Request): { username: string; password: string } {
  const body = (req.body ?? {}) as { username?: unknown; password?: unknown };
  const { username, password } = body;
  if (
    typeof username !== 'string' ||
    typeof password !== 'string' ||
    username.length === 0 ||
    username.length > MAX_FIELD_LENGTH ||
    password.length > MAX_FIELD_LENGTH
  ) {
    throw new HttpError(400, 'expected Content-Type: application/json and a body like {"username": "alice", "password": "..."}');
  }
  return { username, password };
}

function sendToken(res: Response, issued: IssuedToken): void {
  res.set('Cache-Control', 'no-store').json(issued);
}
