import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../src/index.js';
import { refusal, SECRET, startServer, TestSocket, type TestServer } from './helpers.js';

const secret = new TextEncoder().encode(SECRET);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface AttackContext {
  now: number;
  publicPem: string;
}
type Attack = [name: string, make: (ctx: AttackContext) => Promise<string>];

const sec = (ms: number) => Math.floor(ms / 1000);
const signed = (claims: Record<string, unknown>, { alg = 'HS256', key = secret as Uint8Array | CryptoKey } = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(key);

/** Every token here must be refused at every entry point (issue 2's attack matrix). */
const ATTACKS: Attack[] = [
  ['alg none', async ({ now }) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp: sec(now) + 300 })}.`],
  ['HS256 signed with the RSA public key (HS/RS confusion)', async ({ now, publicPem }) =>
    signed({ sub: 'alice', exp: sec(now) + 300 }, { key: new TextEncoder().encode(publicPem) })],
  ['an algorithm outside the allowlist (HS512)', async ({ now }) => signed({ sub: 'alice', exp: sec(now) + 300 }, { alg: 'HS512' })],
  ['the wrong issuer', async ({ now }) => signed({ sub: 'alice', iss: 'https://evil.example', aud: 'app', exp: sec(now) + 300 })],
  ['a missing issuer', async ({ now }) => signed({ sub: 'alice', aud: 'app', exp: sec(now) + 300 })],
  ['the wrong audience', async ({ now }) => signed({ sub: 'alice', iss: 'https://id.example', aud: 'other', exp: sec(now) + 300 })],
  ['a missing exp', async () => signed({ sub: 'alice', iss: 'https://id.example', aud: 'app' })],
  ['an expired exp', async ({ now }) => signed({ sub: 'alice', iss: 'https://id.example', aud: 'app', exp: sec(now) - 60 })],
  ['a future nbf', async ({ now }) =>
    signed({ sub: 'alice', iss: 'https://id.example', aud: 'app', nbf: sec(now) + 60, exp: sec(now) + 300 })],
  ['a bad signature', async ({ now }) =>
    signed({ sub: 'alice', iss: 'https://id.example', aud: 'app', exp: sec(now) + 300 }, { key: new TextEncoder().encode('k'.repeat(40)) })],
  ['a tampered payload', async ({ now }) => {
    const [header, , signature] = (await signed({ sub: 'alice', iss: 'https://id.example', aud: 'app', exp: sec(now) + 300 })).split('.');
    return `${header}.${b64({ sub: 'admin', iss: 'https://id.example', aud: 'app', exp: sec(now) + 300 })}.${signature}`;
  }],
];

const OPTIONS: Partial<GatewayOptions> = {
  jwt: { secret: SECRET, issuer: 'https://id.example', audience: 'app' },
  handshakeToken: true,
};

let server: TestServer;
let perMessageServer: TestServer;
const ctx: AttackContext = { now: 0, publicPem: '' };

beforeAll(async () => {
  server = await startServer(OPTIONS);
  perMessageServer = await startServer({ ...OPTIONS, perMessageAuth: true });
  const { publicKey } = await generateKeyPair('RS256');
  ctx.publicPem = await exportSPKI(publicKey);
  ctx.now = server.clock.now();
});
afterAll(async () => {
  await server.close();
  await perMessageServer.close();
});

const valid = (target: TestServer) =>
  target.token('alice', { claims: { iss: 'https://id.example', aud: 'app' } });

describe.each(ATTACKS)('a token with %s', (_name, make) => {
  it('is refused by POST /auth/ticket with 401', async () => {
    const response = await fetch(`${server.origin}/auth/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await make(ctx)}` },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'unauthorized' });
  });

  it('is refused at the handshake with 401', async () => {
    const token = await make(ctx);
    const refused = await refusal(TestSocket.open(server.wsUrl, { protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`] }));
    expect(refused.status).toBe(401);
  });

  it('closes an auth frame with 4401', async () => {
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await make(ctx) });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
  });

  it('closes a reauth with 4401 and drops the identity', async () => {
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await valid(server) });
    await socket.next('auth_ok');
    socket.send({ type: 'auth', token: await make(ctx) });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
  });

  it('closes a per-message token with 4401 and never hands the message to the application', async () => {
    const socket = await TestSocket.open(perMessageServer.wsUrl);
    socket.send({ type: 'message', data: 'x', token: await make(ctx), id: 'm' });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
    expect(socket.frames.some((frame) => frame.type === 'ack')).toBe(false);
  });
});

describe('with an RSA public key configured', () => {
  it('refuses an HS256 token signed with that public key (algorithm confusion)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const publicPem = await exportSPKI(publicKey);
    const rsa = await startServer({ jwt: { publicKey: publicPem } });
    try {
      const now = rsa.clock.now();
      const good = await new SignJWT({ sub: 'alice', exp: sec(now) + 300 }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
      const forged = await signed({ sub: 'alice', exp: sec(now) + 300 }, { key: new TextEncoder().encode(publicPem) });
      const ok = await TestSocket.open(rsa.wsUrl);
      ok.send({ type: 'auth', token: good });
      expect((await ok.next('auth_ok')).user).toBe('alice');
      const bad = await TestSocket.open(rsa.wsUrl);
      bad.send({ type: 'auth', token: forged });
      expect(await bad.closed).toEqual({ code: 4401, reason: 'invalid token' });
      ok.close();
    } finally {
      await rsa.close();
    }
  });
});

describe('clock tolerance', () => {
  it('accepts a token whose nbf is within the 5 s tolerance', async () => {
    const socket = await TestSocket.open(server.wsUrl);
    const now = server.clock.now();
    socket.send({ type: 'auth', token: await signed({ sub: 'alice', iss: 'https://id.example', aud: 'app', nbf: sec(now) + 3, exp: sec(now) + 300 }) });
    expect((await socket.next('auth_ok')).user).toBe('alice');
    socket.close();
  });
});
