import { ManualClock } from '@authsocket/server';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../src/password-hash.js';
import { API_KEY, login, SECRET, start, stopAll, type TestGateway, ticket } from './helpers.js';

afterEach(stopAll);

const refresh = (gateway: TestGateway, token?: string) =>
  gateway.request('/auth/refresh', {
    method: 'POST',
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
  });

describe('POST /auth/login', () => {
  it('issues a 2-minute HS256 JWT for a demo user', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET]);
    const response = await gateway.request('/auth/login', { json: { username: 'bob', password: 'builder' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { user: string; token: string; expiresAt: number };
    const claims = decodeJwt(body.token);
    expect(decodeProtectedHeader(body.token).alg).toBe('HS256');
    expect(claims.sub).toBe('bob');
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    expect(body).toEqual({ user: 'bob', token: body.token, expiresAt: (claims.exp as number) * 1000 });
  });

  it('answers a wrong password and an unknown user with the same generic 401', async () => {
    const gateway = await start(['--demo']);
    for (const credentials of [
      { username: 'alice', password: 'builder' },
      { username: 'alice', password: '' },
      { username: 'mallory', password: 'wonderland' },
    ]) {
      const response = await gateway.request('/auth/login', { json: credentials });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: 'invalid username or password' });
    }
  });

  const malformed: [string, unknown][] = [
    ['no password', { username: 'alice' }],
    ['a numeric password', { username: 'alice', password: 1 }],
    ['an empty username', { username: '', password: 'x' }],
    ['an array', ['alice', 'wonderland']],
  ];
  for (const [name, body] of malformed) {
    it(`answers a body with ${name} with 400`, async () => {
      const gateway = await start(['--demo']);
      const response = await gateway.request('/auth/login', { json: body });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: 'expected Content-Type: application/json and a body like {"username": "alice", "password": "..."}',
      });
    });
  }

  it('carries the configured issuer and audience, which the gateway then requires', async () => {
    const gateway = await start(['--demo', '--issuer', 'https://demo.example', '--audience', 'chat']);
    const token = await login(gateway, 'carol');
    expect(decodeJwt(token)).toMatchObject({ iss: 'https://demo.example', aud: 'chat' });
    expect(await ticket(gateway, token)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('does not exist outside demo mode', async () => {
    const gateway = await start(['--jwt-secret', SECRET]);
    const response = await gateway.request('/auth/login', { json: { username: 'alice', password: 'wonderland' } });
    expect(response.status).toBe(404);
  });
});

describe('POST /auth/refresh', () => {
  it('trades a valid token for a fresh one', async () => {
    const clock = new ManualClock(Date.now());
    const gateway = await start(['--demo'], { clock });
    const token = await login(gateway, 'alice');
    clock.advance(60_000);
    const response = await refresh(gateway, token);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const fresh = ((await response.json()) as { token: string }).token;
    expect(decodeJwt(fresh).sub).toBe('alice');
    expect(decodeJwt(fresh).exp).toBe((decodeJwt(token).exp as number) + 60);
    expect(await ticket(gateway, fresh)).toBeTruthy();
  });

  it('refuses a missing, garbage, foreign, expired or revoked token with 401', async () => {
    const clock = new ManualClock(Date.now());
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--api-key', API_KEY], { clock });
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(new TextEncoder().encode('another-secret-that-is-32-bytes-long!!'));
    const notDemoUser = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setIssuedAt(Math.floor(clock.now() / 1000))
      .setExpirationTime(Math.floor(clock.now() / 1000) + 120)
      .sign(new TextEncoder().encode(SECRET));
    const expiring = await login(gateway, 'bob');
    const revoked = await login(gateway, 'alice');
    clock.advance(1_000);
    await gateway.request('/api/users/alice/revoke', { apiKey: API_KEY, method: 'POST' });

    const attempts: [string, string | undefined][] = [
      ['missing', undefined],
      ['garbage', 'garbage'],
      ['foreign', foreign],
      ['not a demo user', notDemoUser],
      ['revoked', revoked],
    ];
    for (const [name, token] of attempts) {
      const response = await refresh(gateway, token);
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect(await response.json()).toEqual({ error: 'unauthorized' });
    }
    expect((await refresh(gateway, expiring)).status).toBe(200);
    clock.advance(120_000);
    expect((await refresh(gateway, expiring)).status).toBe(401);
  });
});

describe('password hashes', () => {
  it('verify only the password they were made from', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horse ', hash)).toBe(false);
    expect(await verifyPassword('correct horse', 'md5$abc')).toBe(false);
  });
});
