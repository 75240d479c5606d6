import http from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { clientAddressResolver } from '../src/client-address.js';
import { createGateway } from '../src/index.js';
import { refusal, SECRET, startServer, TestSocket } from './helpers.js';

/** A request as Node parses it, from `peer` with these headers (no network needed to read headers). */
function request(peer: string, headers: Record<string, string>): http.IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: peer });
  const req = new http.IncomingMessage(socket);
  req.headers = headers;
  return req;
}

describe('the client address behind proxies', () => {
  it('ignores forwarding headers unless a hop is trusted', () => {
    const resolve = clientAddressResolver(0);
    expect(resolve(request('10.0.0.5', { 'x-forwarded-for': '203.0.113.9' }))).toBe('10.0.0.5');
  });

  it('takes the address the trusted hops vouch for, not one the client wrote itself', () => {
    const oneHop = clientAddressResolver(1);
    // The client forged 1.2.3.4; the proxy appended the address it really saw.
    const forged = request('10.0.0.5', { 'x-forwarded-for': '1.2.3.4, 203.0.113.9' });
    expect(oneHop(forged)).toBe('203.0.113.9');
    expect(clientAddressResolver(2)(forged)).toBe('1.2.3.4');
    expect(clientAddressResolver(5)(forged)).toBe('1.2.3.4');
    expect(oneHop(request('10.0.0.5', {}))).toBe('10.0.0.5');
  });

  it('walks trusted CIDRs outwards and stops at the first untrusted address', () => {
    const resolve = clientAddressResolver(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);
    expect(resolve(request('10.0.0.5', { 'x-forwarded-for': '1.2.3.4, 203.0.113.9, 192.168.1.7' }))).toBe('203.0.113.9');
    // A peer that is not a trusted proxy: its headers mean nothing.
    expect(resolve(request('198.51.100.1', { 'x-forwarded-for': '203.0.113.9' }))).toBe('198.51.100.1');
    expect(resolve(request('::ffff:10.1.2.3', { 'x-forwarded-for': '203.0.113.9' }))).toBe('203.0.113.9');
    expect(resolve(request('fd00::1', { 'x-forwarded-for': '2001:db8::7' }))).toBe('2001:db8::7');
  });

  it('reads RFC 7239 Forwarded before X-Forwarded-For', () => {
    const resolve = clientAddressResolver(1);
    const req = request('10.0.0.5', {
      forwarded: 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"',
      'x-forwarded-for': '198.51.100.1',
    });
    expect(resolve(req)).toBe('2001:db8:cafe::17');
    expect(resolve(request('10.0.0.5', { forwarded: 'for=unknown', 'x-forwarded-for': '198.51.100.1' }))).toBe('198.51.100.1');
  });

  it('refuses an unusable setting by name', () => {
    for (const trustProxy of [-1, 1.5, 33, ['10.0.0.0/33'], ['not-an-ip'], ['10.0.0.0/'], ['1.2.3.4/8/8']] as const) {
      expect(() => createGateway({ jwt: { secret: SECRET }, trustProxy })).toThrow("invalid option 'trustProxy'");
    }
  });

  it('keys the upgrade rate limit by the forwarded address from a trusted proxy', async () => {
    const server = await startServer({ trustProxy: ['127.0.0.1'], upgradeRateLimit: { limit: 2, windowMs: 60_000 } });
    try {
      const open = (client: string) => TestSocket.open(server.wsUrl, { headers: { 'x-forwarded-for': client } });
      const sockets = [await open('203.0.113.1'), await open('203.0.113.1')];
      expect((await refusal(open('203.0.113.1'))).status).toBe(429);
      // Another client behind the same proxy has its own budget.
      const otherClient = await open('203.0.113.2');
      for (const socket of [...sockets, otherClient]) socket.close();
    } finally {
      await server.close();
    }
  });
});
