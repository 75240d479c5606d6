import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Publication, StoreUnavailableError, ticketKey } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions } from '../src/index.js';
import { EngineNodes, freePorts, RedisServer, until } from './helpers.js';

/**
 * The least an application user needs: its keys and channels, the commands the stores and scripts
 * run (ACL checks commands inside scripts too), INFO for the client's ready check. Documented in
 * the README; if this list goes stale, this test fails.
 */
const ACL_RULES = [
  'on', '>s3cret', 'resetchannels', '~authsocket:*', '&authsocket:*', '-@all', '+@connection', '+info',
  '+get', '+set', '+getdel', '+eval', '+evalsha', '+spublish', '+ssubscribe', '+sunsubscribe',
  '+time', '+hmget', '+hset', '+hincrby', '+del', '+pexpire', '+xadd', '+xrange', '+xtrim',
];

const engines = new EngineNodes();
afterEach(() => engines.closeAll());

function engine(url: string, options: RedisEngineOptions = {}): RedisEngine {
  return engines.track(createRedisEngine(url, { commandTimeoutMs: 1_000, connectTimeoutMs: 2_000, maxReconnectDelayMs: 100, ...options }));
}

const record = () => {
  const now = Date.now();
  return { user: 'alice', claims: { sub: 'alice' }, tokenExpiresAt: now + 60_000, issuedAt: now, expiresAt: now + 30_000 };
};
const newKey = () => ticketKey(randomBytes(32).toString('base64url'));

/** Every engine feature once, over `url`, with a second node receiving. */
async function exercise(url: string, options: RedisEngineOptions = {}): Promise<void> {
  const [a, b] = [engine(url, options), engine(url, options)];
  const received: Publication[] = [];
  const controls: string[] = [];
  await a.broker.start({ publication: () => 1, control: () => {} });
  await b.broker.start({ publication: (p) => received.push(p), control: (m) => controls.push('revoke' in m ? m.revoke : m.close) });
  const key = newKey();
  await a.ticketStore.put(key, record(), 10_000);
  expect(await b.ticketStore.take(key, true)).toMatchObject({ user: 'alice' });
  await a.revocationStore.revoke('mallory', 42);
  expect(await b.revocationStore.revokedAt('mallory')).toBe(42);
  const stream = 'user:alice';
  const start = await b.broker.position(stream);
  expect(await a.broker.publish({ to: { user: 'alice' }, data: '"hi"', stream })).toBe(1);
  await a.broker.publish({ to: { everyone: true }, data: '"all"' });
  await a.broker.control({ revoke: 'mallory' });
  await until(() => received.length === 2 && controls.length === 1, 3_000, 'deliveries');
  expect(received.map((p) => p.data)).toEqual(['"hi"', '"all"']);
  const read = await b.broker.read(stream, start);
  expect(read.recovered).toBe(true);
  expect(read.publications.map((p) => p.data)).toEqual(['"hi"']);
}

describe('a Redis that requires a password', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    // The default user has a password (requirepass); `app` is an ACL user with the least it needs.
    redis = await RedisServer.start(['--requirepass', 'legacy-pass', '--user', 'app', ...ACL_RULES]);
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('works as an ACL user with only the documented permissions', async () => {
    await exercise(`redis://app:s3cret@127.0.0.1:${redis.port}`);
  });

  it('works with requirepass (password only in the URL)', async () => {
    await exercise(`redis://:legacy-pass@127.0.0.1:${redis.port}`);
  });

  it('fails closed, quickly, with wrong or missing credentials', async () => {
    for (const url of [`redis://app:wrong@127.0.0.1:${redis.port}`, redis.url]) {
      const denied = engine(url);
      const started = Date.now();
      await expect(denied.ticketStore.take(newKey(), true)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(denied.ticketStore.put(newKey(), record(), 1_000)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(denied.broker.publish({ to: { everyone: true }, data: '1' })).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(denied.status).not.toBe('ready');
    }
  });
});

describe('a Redis over TLS (rediss://)', () => {
  let redis: RedisServer;
  let certs: string;
  let tlsPort: number;
  beforeAll(async () => {
    certs = mkdtempSync(path.join(tmpdir(), 'authsocket-tls-'));
    // A self-signed certificate for 127.0.0.1, its own CA.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(certs, 'key.pem'), '-out', path.join(certs, 'cert.pem'),
    ], { stdio: 'ignore' });
    const [plainPort, port] = await freePorts(2);
    tlsPort = port!;
    redis = await RedisServer.start([
      '--tls-port', String(tlsPort),
      '--tls-cert-file', path.join(certs, 'cert.pem'),
      '--tls-key-file', path.join(certs, 'key.pem'),
      '--tls-ca-cert-file', path.join(certs, 'cert.pem'),
      '--tls-auth-clients', 'no',
      '--user', 'app', ...ACL_RULES,
    ], plainPort);
  });
  afterAll(async () => {
    await redis.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  it('works with a rediss:// URL, credentials in it, and the CA passed through the redis options', async () => {
    await exercise(`rediss://app:s3cret@127.0.0.1:${tlsPort}`, { redis: { tls: { ca: readFileSync(path.join(certs, 'cert.pem')) } } });
  });

  it('verifies the server certificate: an unknown CA fails closed', async () => {
    const untrusted = engine(`rediss://app:s3cret@127.0.0.1:${tlsPort}`);
    await expect(untrusted.ticketStore.take(newKey(), true)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(untrusted.ready(500)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
