import { mkdtemp, writeFile } from 'node:fs/promises';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { createGateway, type Gateway, type ManualClock } from '@authsocket/server';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPusher, Canary, CANARY_USER } from './helpers/canary.js';
import { Client, refusal } from './helpers/client.js';
import { type GatewayHandle, startTestGateway, wholeSecondClock } from './helpers/gateway.js';
import { rawExchange, upgradeRequest } from './helpers/raw.js';
import { AUDIENCE, b64url, hs256, ISSUER, mint, type MintOptions, SECRET, seconds, unsigned } from './helpers/tokens.js';

/**
 * Every token attack at every entry point: `POST /auth/ticket`, the `auth` frame and an in-band
 * reauth on the gateway process (`--issuer`/`--audience` set, a ManualClock injected so the 5 s
 * tolerance can be hit on both sides); the handshake token and per-message tokens on a
 * `createGateway` instance, because the gateway process has no flags for those modes.
 */

type Keys = Awaited<ReturnType<typeof generateKeyPair>>;

/** A local HTTP server that counts requests: a `jku`/`x5u` target that must never be fetched. */
class CountingServer {
  requests = 0;
  readonly #server = http.createServer((_req, res) => {
    this.requests++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(this.body);
  });
  body = '{"keys":[]}';

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/jwks.json`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

interface Ctx {
  readonly now: number;
  readonly attacker: Keys;
  readonly jkuUrl: string;
}

const other = new TextEncoder().encode('another-secret-of-at-least-32-bytes-long!');
const valid = (ctx: Ctx, options: Omit<MintOptions, 'now'> = {}) => mint({ now: ctx.now, ...options });
const payload = (ctx: Ctx, extra: Record<string, unknown> = {}) => ({
  sub: 'alice',
  iss: ISSUER,
  aud: AUDIENCE,
  iat: seconds(ctx.now),
  exp: seconds(ctx.now) + 3600,
  ...extra,
});
const withoutClaim = (ctx: Ctx, claim: string) => {
  const claims = payload(ctx) as Record<string, unknown>;
  delete claims[claim];
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
};
const segments = async (ctx: Ctx) => (await valid(ctx)).split('.') as [string, string, string];

/** Tokens every entry point must refuse. */
const ATTACKS: Array<[string, (ctx: Ctx) => Promise<string>]> = [
  ['alg none, unsigned', async (ctx) => unsigned({ alg: 'none', typ: 'JWT' }, payload(ctx))],
  ['alg None in mixed case', async (ctx) => unsigned({ alg: 'None' }, payload(ctx))],
  ['alg NONE with the signature of a valid token', async (ctx) => unsigned({ alg: 'NONE' }, payload(ctx), (await segments(ctx))[2])],
  ['HS256 signed with another secret', (ctx) => valid(ctx, { key: other })],
  ['HS384 signed with the right secret (outside the allowlist)', (ctx) => valid(ctx, { header: { alg: 'HS384' } })],
  ['HS512 signed with the right secret (outside the allowlist)', (ctx) => valid(ctx, { header: { alg: 'HS512' } })],
  ['RS256 signed with an attacker key', (ctx) => valid(ctx, { header: { alg: 'RS256' }, key: ctx.attacker.privateKey })],
  ['RS256 carrying its own key in a jwk header', async (ctx) =>
    valid(ctx, { header: { alg: 'RS256', jwk: await exportJWK(ctx.attacker.publicKey) }, key: ctx.attacker.privateKey })],
  ['kid and jku pointing at a local server, signed with another secret', (ctx) =>
    valid(ctx, { header: { kid: '../../../../etc/passwd', jku: ctx.jkuUrl }, key: other })],
  ['x5u pointing at a local server, signed with another secret', (ctx) => valid(ctx, { header: { x5u: ctx.jkuUrl }, key: other })],
  ['the wrong issuer', (ctx) => valid(ctx, { claims: { iss: 'https://evil.example' } })],
  ['the issuer with a trailing slash', (ctx) => valid(ctx, { claims: { iss: `${ISSUER}/` } })],
  ['a missing issuer', (ctx) => withoutClaim(ctx, 'iss')],
  ['the wrong audience', (ctx) => valid(ctx, { claims: { aud: 'other-app' } })],
  ['an audience list without ours', (ctx) => valid(ctx, { claims: { aud: ['other-app', 'APP'] } })],
  ['a missing audience', (ctx) => withoutClaim(ctx, 'aud')],
  ['a missing exp', (ctx) => valid(ctx, { expiresIn: null })],
  ['exp as a string', async (ctx) => hs256({ alg: 'HS256' }, payload(ctx, { exp: String(seconds(ctx.now) + 3600) }))],
  ['exp 6 s ago (beyond the 5 s tolerance)', (ctx) => valid(ctx, { expiresIn: -6 })],
  ['exp 4 s ago (inside the tolerance: a connection must not start expired)', (ctx) => valid(ctx, { expiresIn: -4 })],
  ['exp exactly now', (ctx) => valid(ctx, { expiresIn: 0 })],
  ['nbf 6 s ahead (beyond the 5 s tolerance)', (ctx) => valid(ctx, { claims: { nbf: seconds(ctx.now) + 6 } })],
  ['a missing sub', (ctx) => withoutClaim(ctx, 'sub')],
  ['an empty sub', (ctx) => valid(ctx, { sub: '' })],
  ['a numeric sub', (ctx) => valid(ctx, { claims: { sub: 42 as unknown as string } })],
  ['a tampered payload (sub swapped)', async (ctx) => {
    const [header, , signature] = await segments(ctx);
    return `${header}.${b64url(payload(ctx, { sub: 'admin' }))}.${signature}`;
  }],
  ['a tampered header (alg swapped to HS512)', async (ctx) => {
    const [, body, signature] = await segments(ctx);
    return `${b64url({ alg: 'HS512' })}.${body}.${signature}`;
  }],
  ['an unknown critical header', async (ctx) => hs256({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }, payload(ctx))],
  ['an unencoded payload (b64: false)', async (ctx) => hs256({ alg: 'HS256', b64: false, crit: ['b64'] }, payload(ctx))],
  ['the signature removed', async (ctx) => `${(await segments(ctx)).slice(0, 2).join('.')}.`],
  ['half the signature', async (ctx) => {
    const [header, body, signature] = await segments(ctx);
    return `${header}.${body}.${signature.slice(0, 21)}`;
  }],
  ['two segments', async (ctx) => (await segments(ctx)).slice(0, 2).join('.')],
  ['the header alone', async (ctx) => (await segments(ctx))[0]],
  ['empty segments', async () => '..'],
  ['five segments (JWE-shaped)', async (ctx) => `${await valid(ctx)}.x.y`],
  ['a space inside', async (ctx) => (await valid(ctx)).replace('.', ' .')],
];

/** Tokens every entry point must accept: the other side of each boundary. */
const ACCEPTED: Array<[string, (ctx: Ctx) => Promise<string>]> = [
  ['exp 1 s ahead', (ctx) => valid(ctx, { expiresIn: 1 })],
  ['nbf 4 s ahead (inside the 5 s tolerance)', (ctx) => valid(ctx, { claims: { nbf: seconds(ctx.now) + 4 } })],
  ['an audience list that includes ours', (ctx) => valid(ctx, { claims: { aud: ['other-app', AUDIENCE] } })],
  ['kid, jku and x5u headers, signed with the right secret (ignored, never fetched)', (ctx) =>
    valid(ctx, { header: { kid: 'anything', jku: ctx.jkuUrl, x5u: ctx.jkuUrl } })],
];

let clock: ManualClock;
let gateway: GatewayHandle;
let canary: Canary;
let library: Gateway;
let libraryServer: http.Server;
let libraryWsUrl: string;
let libraryPort: number;
const handled: unknown[] = [];
const jku = new CountingServer();
let ctx: Ctx;

beforeAll(async () => {
  clock = wholeSecondClock();
  gateway = await startTestGateway(['--issuer', ISSUER, '--audience', AUDIENCE], { clock });
  canary = await Canary.onGateway(gateway);
  library = createGateway({
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    handshakeToken: true,
    perMessageAuth: true,
    clock,
    onMessage: ({ data }) => void handled.push(data),
  });
  libraryServer = http.createServer(library.handleRequest);
  library.attach(libraryServer);
  await new Promise<void>((resolve) => libraryServer.listen(0, '127.0.0.1', resolve));
  libraryPort = (libraryServer.address() as AddressInfo).port;
  libraryWsUrl = `ws://127.0.0.1:${libraryPort}/`;
  const jkuUrl = await jku.start();
  // mallory's tokens below were issued at this same instant: revocation covers them (iat <= revokedAt).
  await gateway.api('/users/mallory/revoke');
  await library.revokeUser('mallory');
  ctx = { now: clock.now(), attacker: await generateKeyPair('RS256'), jkuUrl };
});
afterAll(async () => {
  canary.close();
  await gateway.close();
  await library.close();
  await new Promise<void>((resolve) => libraryServer.close(() => resolve()));
  await jku.close();
});

/** The entry points, each answering whether `token` was accepted (and asserting the exact refusal). */
const ENTRY_POINTS: Array<[string, (token: string, accept: boolean) => Promise<void>]> = [
  ['POST /auth/ticket', async (token, accept) => {
    const response = await gateway.ticketResponse(token);
    if (accept) {
      expect(response.status).toBe(200);
      return;
    }
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(await response.json()).toEqual({ error: 'unauthorized' });
  }],
  ['the auth frame', async (token, accept) => {
    const socket = await Client.open(gateway.wsUrl);
    socket.send({ type: 'auth', token });
    if (accept) {
      expect(await socket.next((frame) => frame.type === 'auth_ok')).toMatchObject({ user: 'alice' });
      return socket.close();
    }
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(socket.frames).toEqual([]);
  }],
  ['an in-band reauth', async (token, accept) => {
    const socket = await Client.authenticated(gateway.wsUrl, await gateway.token('alice'));
    socket.send({ type: 'auth', token });
    if (accept) {
      await socket.next((frame) => frame.type === 'auth_ok' && socket.frames.indexOf(frame) > 0);
      return socket.close();
    }
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(socket.frames.map((frame) => frame.type)).toEqual(['auth_ok']);
  }],
  ['the handshake token (createGateway)', async (token, accept) => {
    const protocols = [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`];
    if (accept) {
      const socket = await Client.open(libraryWsUrl, { protocols });
      expect(await socket.next((frame) => frame.type === 'auth_ok')).toMatchObject({ user: 'alice' });
      return socket.close();
    }
    // Raw, since the ws client refuses to send some of these entries at all.
    const answer = await rawExchange(libraryPort, upgradeRequest(libraryPort, { path: '/', protocols }));
    expect([answer.status, answer.body]).toEqual([401, 'unauthorized']);
  }],
  ['a per-message token (createGateway)', async (token, accept) => {
    const socket = await Client.open(libraryWsUrl);
    const marker = `m-${Math.random()}`;
    socket.send({ type: 'message', data: marker, token, id: 'm' });
    if (accept) {
      await socket.next((frame) => frame.type === 'ack');
      expect(handled).toContain(marker);
      return socket.close();
    }
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(handled).not.toContain(marker);
    expect(socket.frames.some((frame) => frame.type === 'ack')).toBe(false);
  }],
];

describe.each(ATTACKS)('a token with %s', (_name, make) => {
  it.each(ENTRY_POINTS)('is refused at %s, and the canary is undisturbed', async (_entry, attempt) => {
    await attempt(await make(ctx), false);
    await canary.assertAlive();
  });
});

describe.each(ACCEPTED)('a token with %s', (_name, make) => {
  it.each(ENTRY_POINTS)('is accepted at %s', async (_entry, attempt) => {
    await attempt(await make(ctx), true);
  });
});

describe('a token of a revoked user, issued before the revocation', () => {
  it('is refused with 401 at the ticket endpoint and 4403 at the auth frame, a reauth and a per-message token', async () => {
    const token = await valid(ctx, { sub: 'mallory' });
    expect((await gateway.ticketResponse(token)).status).toBe(401);
    const first = await Client.open(gateway.wsUrl);
    first.send({ type: 'auth', token });
    expect(await first.closedWithin()).toEqual({ code: 4403, reason: 'revoked' });
    const perMessage = await Client.open(libraryWsUrl);
    perMessage.send({ type: 'message', data: 'from mallory', token });
    expect(await perMessage.closedWithin()).toEqual({ code: 4403, reason: 'revoked' });
    expect(handled).not.toContain('from mallory');
    expect((await refusal(Client.open(libraryWsUrl, { protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`] }))).status).toBe(401);
    await canary.assertAlive();
  });

  it('is refused at a reauth on a socket opened before the revocation, which is then closed 4403', async () => {
    const victim = await Client.authenticated(gateway.wsUrl, await valid(ctx, { sub: 'trudy' }));
    const stale = await valid(ctx, { sub: 'trudy' });
    await gateway.api('/users/trudy/revoke');
    expect(await victim.closedWithin()).toEqual({ code: 4403, reason: 'revoked' });
    const again = await Client.open(gateway.wsUrl);
    again.send({ type: 'auth', token: stale });
    expect(await again.closedWithin()).toEqual({ code: 4403, reason: 'revoked' });
  });
});

describe('key URLs in token headers', () => {
  it('are never fetched: the jku/x5u server received zero requests from every attempt above', () => {
    expect(jku.requests).toBe(0);
  });
});

describe('oversized tokens', () => {
  const padded = (length: number) => valid(ctx, { claims: { pad: 'p'.repeat(length) } });

  it('refuses a 9,000-character token at every entry point, quickly and without verifying it', async () => {
    const token = await padded(9_000);
    expect(token.length).toBeGreaterThan(8_192);
    expect((await gateway.ticketResponse(token)).status).toBe(401);
    const socket = await Client.open(gateway.wsUrl);
    socket.send({ type: 'auth', token });
    expect(await socket.closedWithin()).toEqual({
      code: 4400,
      reason: `'auth' expects 'token' to be a string of 1-8192 characters, got a string of ${token.length} characters`,
    });
    expect((await refusal(Client.open(libraryWsUrl, { protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`] }))).status).toBe(401);
    await canary.assertAlive();
  });

  it('answers a 1 MB token with 431 over HTTP and 1009 in a frame, within a bounded time', async () => {
    const token = await padded(1024 * 1024);
    const started = performance.now();
    // Node refuses headers over 16 KiB before any route runs.
    const request = `POST /auth/ticket HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`;
    expect((await rawExchange(gateway.port, request)).status).toBe(431);
    expect((await refusal(Client.open(libraryWsUrl, { protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`] }))).status).toBe(431);
    const socket = await Client.open(gateway.wsUrl);
    socket.send({ type: 'auth', token });
    expect(await socket.closedWithin()).toEqual({ code: 1009, reason: '' });
    const perMessage = await Client.open(libraryWsUrl);
    perMessage.send({ type: 'message', data: 1, token });
    expect(await perMessage.closedWithin()).toEqual({ code: 1009, reason: '' });
    expect(performance.now() - started).toBeLessThan(5_000);
    await canary.assertAlive();
  });
});

describe('with an RSA public key (--jwt-public-key)', () => {
  let rsa: GatewayHandle;
  let rsaCanary: Canary;
  // A node:crypto KeyObject, which jose signs with under any RS*/PS* algorithm.
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  beforeAll(async () => {
    // As operators do: the PEM in a file, its path on the command line.
    const file = join(await mkdtemp(join(tmpdir(), 'authsocket-adversarial-')), 'public.pem');
    await writeFile(file, pem);
    rsa = await startTestGateway(['--jwt-public-key', file, '--issuer', ISSUER, '--audience', AUDIENCE], { clock, keySource: 'flags' });
    rsaCanary = await Canary.start(rsa.wsUrl, await valid(ctx, { sub: CANARY_USER, header: { alg: 'RS256' }, key: keys.privateKey }), apiPusher(rsa));
  });
  afterAll(async () => {
    rsaCanary.close();
    await rsa.close();
  });

  const signedWith = (alg: string, key: Uint8Array | CryptoKey | KeyObject) => valid(ctx, { header: { alg }, key });

  it.each<[string, () => Promise<string>]>([
    ['HS256 signed with the PEM text of the public key (algorithm confusion)', () => signedWith('HS256', new TextEncoder().encode(pem))],
    ['HS256 signed with the DER bytes of the public key', () =>
      signedWith('HS256', Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'))],
    ['RS512 signed with the right private key (outside the allowlist)', () => signedWith('RS512', keys.privateKey)],
    ['RS256 signed with an attacker key', () => signedWith('RS256', ctx.attacker.privateKey)],
    ['alg none', async () => unsigned({ alg: 'none' }, payload(ctx))],
  ])('refuses %s at the ticket endpoint (401), the auth frame and a reauth (4401)', async (_name, make) => {
    const token = await make();
    expect((await rsa.ticketResponse(token)).status).toBe(401);
    const socket = await Client.open(rsa.wsUrl);
    socket.send({ type: 'auth', token });
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    const live = await Client.authenticated(rsa.wsUrl, await signedWith('RS256', keys.privateKey));
    live.send({ type: 'auth', token });
    expect(await live.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    await rsaCanary.assertAlive();
  });

  it('accepts RS256 and PS256 signed with the right private key', async () => {
    for (const alg of ['RS256', 'PS256']) {
      expect((await rsa.ticketResponse(await signedWith(alg, keys.privateKey))).status, alg).toBe(200);
    }
  });
});

describe('with a JWKS URL (--jwks-url)', () => {
  let jwks: GatewayHandle;
  let jwksCanary: Canary;
  let keys: Keys;
  const idp = new CountingServer();
  const attackerServer = new CountingServer();
  let attackerUrl: string;

  beforeAll(async () => {
    keys = await generateKeyPair('RS256', { extractable: true });
    idp.body = JSON.stringify({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'legit', alg: 'RS256', use: 'sig' }] });
    const jwksUrl = await idp.start();
    attackerUrl = await attackerServer.start();
    const attackerJwk = { ...(await exportJWK(ctx.attacker.publicKey)), kid: 'attacker', alg: 'RS256' };
    attackerServer.body = JSON.stringify({ keys: [attackerJwk] });
    jwks = await startTestGateway(['--jwks-url', jwksUrl, '--issuer', ISSUER, '--audience', AUDIENCE], { clock, keySource: 'flags' });
    const canaryToken = await valid(ctx, { sub: CANARY_USER, header: { alg: 'RS256', kid: 'legit' }, key: keys.privateKey });
    jwksCanary = await Canary.start(jwks.wsUrl, canaryToken, apiPusher(jwks));
  });
  afterAll(async () => {
    jwksCanary.close();
    await jwks.close();
    await idp.close();
    await attackerServer.close();
  });

  const attackerSigned = async (header: Record<string, unknown>) =>
    valid(ctx, { header: { alg: 'RS256', ...header }, key: ctx.attacker.privateKey });

  it.each<[string, () => Promise<string>]>([
    ["the IdP's kid, signed by the attacker, with a jku to the attacker's keys", () => attackerSigned({ kid: 'legit', jku: attackerUrl })],
    ["the attacker's kid with its key embedded as jwk", async () =>
      attackerSigned({ kid: 'attacker', jwk: await exportJWK(ctx.attacker.publicKey) })],
    ["an x5u to the attacker's server", () => attackerSigned({ kid: 'legit', x5u: attackerUrl })],
    ['a path-traversal kid', () => attackerSigned({ kid: '../../../../etc/passwd' })],
    ['an SQL-injection kid', () => attackerSigned({ kid: "' OR '1'='1" })],
    ['HS256 signed with the JWKS document as the secret', () => valid(ctx, { key: new TextEncoder().encode(idp.body) })],
  ])('refuses %s, and never contacts the attacker', async (_name, make) => {
    const token = await make();
    expect((await jwks.ticketResponse(token)).status).toBe(401);
    const socket = await Client.open(jwks.wsUrl);
    socket.send({ type: 'auth', token });
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(attackerServer.requests).toBe(0);
    await jwksCanary.assertAlive();
  });

  it('accepts a token signed with the IdP key', async () => {
    const token = await valid(ctx, { header: { alg: 'RS256', kid: 'legit' }, key: keys.privateKey });
    expect((await jwks.ticketResponse(token)).status).toBe(200);
  });

  it('turns 50 tokens with unknown kids into at most one extra JWKS fetch (the refetch cooldown), not 50', async () => {
    await jwks.ticketResponse(await valid(ctx, { header: { alg: 'RS256', kid: 'legit' }, key: keys.privateKey }));
    const before = idp.requests;
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => attackerSigned({ kid: `unknown-${i}` })));
    const statuses = await Promise.all(tokens.map(async (token) => (await jwks.ticketResponse(token)).status));
    expect(statuses).toEqual(tokens.map(() => 401));
    expect(idp.requests - before).toBeLessThanOrEqual(1);
    expect(attackerServer.requests).toBe(0);
  });
});
