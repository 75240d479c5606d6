import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '@authsocket/protocol';
import { createGateway, type GatewayOptions, type Logger, ManualClock } from '@authsocket/server';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from './helpers/client.js';

/**
 * Issue 19, parts 2 and 3, against a real identity provider (oidc-provider, JWT access tokens by
 * resource indicators, RS256 and ES256) and a JWKS endpoint that hangs: an IdP outage is 503 /
 * 1011 (retry), never 401 / 4401 (log out); cached keys serve past their age within the stale
 * bound; a rotated-in key is accepted within the cooldown; refusals are logged without tokens.
 */

const HOST = '127.0.0.1';
const AUDIENCE = 'urn:authsocket';
const CLIENTS = ['svc-rs', 'svc-es'] as const;

interface Idp {
  readonly issuer: string;
  readonly jwksUrl: string;
  /** A client-credentials access token (a JWT for `sub` = the client id) signed with `alg`. */
  token(alg: 'RS256' | 'ES256'): Promise<string>;
  close(): Promise<void>;
}

/** Starts oidc-provider on `port` (0: any) with these private signing keys. */
async function startIdp(keys: JWK[], port = 0): Promise<Idp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
  const issuer = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    jwks: { keys },
    clients: CLIENTS.map((client_id) => ({
      client_id,
      client_secret: `${client_id}-secret-0123456789`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx: { oidc: { client?: { clientId: string } } }) => ({
          scope: 'api',
          audience: AUDIENCE,
          accessTokenTTL: 3_600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ctx.oidc.client?.clientId === 'svc-es' ? 'ES256' : 'RS256' } },
        }),
      },
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    async token(alg) {
      const client = alg === 'ES256' ? 'svc-es' : 'svc-rs';
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client}:${client}-secret-0123456789`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: AUDIENCE }),
      });
      const body = (await response.json()) as { access_token?: string };
      if (response.status !== 200 || body.access_token === undefined) throw new Error(`token endpoint: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
}

interface LogLine {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

interface TestGateway {
  readonly origin: string;
  readonly wsUrl: string;
  readonly lines: LogLine[];
  ticket(token: string): Promise<Response>;
  /** Opens a socket and sends `auth {token}`: the first frame or the close that follows. */
  auth(token: string): Promise<{ type?: string; close?: number }>;
  close(): Promise<void>;
}

async function startGateway(jwt: GatewayOptions['jwt'], clock?: ManualClock): Promise<TestGateway> {
  const lines: LogLine[] = [];
  const logger = Object.fromEntries(
    (['debug', 'info', 'warn', 'error'] as const).map((level) => [
      level,
      (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message }),
    ]),
  ) as unknown as Logger;
  const gateway = createGateway({ jwt, logger, ...(clock ? { clock } : {}) });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const origin = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  const wsUrl = `ws://${HOST}:${(server.address() as AddressInfo).port}/`;
  return {
    origin,
    wsUrl,
    lines,
    ticket: (token) => fetch(`${origin}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }),
    async auth(token) {
      const client = await Client.open(wsUrl, { localAddress: HOST });
      client.send({ type: 'auth', token });
      const first: { type?: string; close?: number } = await Promise.race([
        client.next(() => true, 10_000).then((frame) => ({ type: frame.type })),
        client.closed.then(({ code }) => ({ close: code })),
      ]);
      if (first.type !== undefined) client.ws.close();
      return first;
    },
    async close() {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** No log line may carry a token, whole or as its signature. */
function expectNoToken(lines: readonly LogLine[], tokens: readonly string[]): void {
  for (const line of lines) {
    const text = JSON.stringify(line);
    for (const token of tokens) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.split('.')[2]);
    }
  }
}

describe('JWKS from oidc-provider: RS256 and ES256, rotation, outage, hang', () => {
  let rsaKey: JWK;
  let ecKey: JWK;
  const open: Array<{ close(): Promise<void> }> = [];
  const track = <T extends { close(): Promise<void> }>(thing: T): T => (open.push(thing), thing);

  beforeAll(async () => {
    rsaKey = await signingKey('RS256', 'rsa-1');
    ecKey = await signingKey('ES256', 'ec-1');
  });
  afterEach(async () => {
    for (const thing of open.splice(0).reverse()) await thing.close().catch(() => undefined);
  });
  afterAll(async () => {
    for (const thing of open.splice(0)) await thing.close().catch(() => undefined);
  });

  it('accepts RS256 and ES256 access tokens at the ticket endpoint and by first-message auth', async () => {
    const idp = track(await startIdp([rsaKey, ecKey]));
    const gateway = track(await startGateway({ jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE }));
    for (const alg of ['RS256', 'ES256'] as const) {
      const token = await idp.token(alg);
      expect((await gateway.ticket(token)).status).toBe(200);
      expect(await gateway.auth(token)).toEqual({ type: 'auth_ok' });
    }
  });

  it('accepts a token signed with a key the IdP added after the last fetch within the cooldown, not 30 s', async () => {
    const idp = await startIdp([rsaKey]);
    const port = Number(new URL(idp.issuer).port);
    const gateway = track(await startGateway({ jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE, jwksCooldownMs: 1_000 }));
    expect((await gateway.ticket(await idp.token('RS256'))).status).toBe(200);
    // Rotation: the IdP restarts on the same address with a new ES256 key, right after that fetch.
    await idp.close();
    const rotated = track(await startIdp([rsaKey, await signingKey('ES256', 'ec-rotated')], port));
    const token = await rotated.token('ES256');
    const started = Date.now();
    expect((await gateway.ticket(token)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await gateway.auth(token)).toEqual({ type: 'auth_ok' });
  });

  it('answers an IdP outage with 503 / 1011, keeps cached keys past their age within the stale bound, then refuses as an outage', async () => {
    const idp = await startIdp([rsaKey, ecKey]);
    const clock = new ManualClock(Date.now());
    const gateway = track(
      await startGateway(
        { jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE, jwksCacheMaxAgeMs: 60_000, jwksStaleIfErrorMs: 120_000 },
        clock,
      ),
    );
    const rs = await idp.token('RS256');
    const es = await idp.token('ES256');
    expect((await gateway.ticket(rs)).status).toBe(200);
    await idp.close();

    // Past the cache age, IdP down: the cached keys still serve (stale-if-error).
    clock.advance(61_000);
    expect((await gateway.ticket(rs)).status).toBe(200);
    expect(await gateway.auth(es)).toEqual({ type: 'auth_ok' });
    const stale = await fetch(`${gateway.origin}/healthz`);
    expect(stale.status).toBe(200);
    expect(await stale.json()).toMatchObject({ jwks: 'stale' });

    // Past the stale bound: an outage, retryable, never "invalid token".
    clock.advance(120_000);
    const refused = await gateway.ticket(rs);
    expect(refused.status).toBe(503);
    expect(await gateway.auth(es)).toEqual({ close: CloseCode.InternalError });
    const health = await fetch(`${gateway.origin}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', jwks: 'unavailable' });

    const outages = gateway.lines.filter((line) => line.fields.reason === 'keys_unavailable');
    expect(outages.map((line) => [line.level, line.fields.stage])).toEqual([
      ['error', 'ticket_endpoint'],
      ['error', 'auth'],
    ]);
    for (const line of outages) expect(line.fields.jwksUrl).toBe(idp.jwksUrl);
    expect(outages[1]?.fields.id).toEqual(expect.any(String));
    expectNoToken(gateway.lines, [rs, es]);
  });

  it('answers 503 / 1011 when the IdP is down before any key was fetched', async () => {
    const idp = await startIdp([rsaKey]);
    const token = await idp.token('RS256');
    await idp.close();
    const gateway = track(await startGateway({ jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE }));
    expect((await gateway.ticket(token)).status).toBe(503);
    expect(await gateway.auth(token)).toEqual({ close: CloseCode.InternalError });
  });

  it('bounds a JWKS endpoint that accepts and never answers by jwksTimeoutMs: 503 / 1011', async () => {
    const idp = track(await startIdp([rsaKey]));
    const token = await idp.token('RS256');
    const hanging = net.createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, HOST, resolve));
    const held = new Set<net.Socket>();
    hanging.on('connection', (socket) => held.add(socket));
    track({
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of held) socket.destroy();
          hanging.close(() => resolve());
        }),
    });
    const jwksUrl = `http://${HOST}:${(hanging.address() as AddressInfo).port}/jwks`;
    const gateway = track(
      await startGateway({ jwksUrl, issuer: idp.issuer, audience: AUDIENCE, jwksTimeoutMs: 500, jwksCooldownMs: 0 }),
    );
    const started = Date.now();
    expect((await gateway.ticket(token)).status).toBe(503);
    expect(await gateway.auth(token)).toEqual({ close: CloseCode.InternalError });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(held.size).toBeGreaterThanOrEqual(1);
  });

  it('logs each refused token once with its reason, address and connection id, and never the token', async () => {
    const idp = track(await startIdp([rsaKey]));
    const gateway = track(await startGateway({ jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: 'someone-else' }));
    const token = await idp.token('RS256');
    expect((await gateway.ticket(token)).status).toBe(401);
    expect(await gateway.auth(token)).toEqual({ close: CloseCode.Unauthorized });
    const refusals = gateway.lines.filter((line) => line.message === 'authentication refused');
    expect(refusals.map((line) => [line.level, line.fields.stage, line.fields.reason])).toEqual([
      ['info', 'ticket_endpoint', 'claims'],
      ['info', 'auth', 'claims'],
    ]);
    for (const line of refusals) expect(line.fields.address).toBe(HOST);
    expect(refusals[1]?.fields.id).toEqual(expect.any(String));
    // The user is not known from a refused token: it is not decoded.
    for (const line of refusals) expect(line.fields.user).toBeUndefined();
    expectNoToken(gateway.lines, [token]);
  });
});
