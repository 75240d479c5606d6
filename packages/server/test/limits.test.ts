import net from 'node:net';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../src/index.js';
import { clientTextFrame, openRawSocket, refusal, SECRET, startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });

describe('malformed frames', () => {
  it.each([
    ['invalid JSON', '{"type":', 4400, 'frame is not valid JSON'],
    ['a JSON array', '[1,2]', 4400, 'frame must be a JSON object, got array'],
    ['a JSON string', '"auth"', 4400, 'frame must be a JSON object, got a string of 4 characters'],
    ['an unknown type', { type: 'hack' }, 4400, "unknown message type 'hack'"],
    ['a missing type', { token: 'x' }, 4400, "frame must have a string 'type', got undefined"],
    ['a wrong field type', { type: 'subscribe', topic: 7 }, 4400, "'subscribe' expects 'topic' to be a string of 1-256 characters, got number"],
    ['an unknown field', { type: 'ping', extra: 1 }, 4400, "'ping' does not accept the field 'extra'"],
    ['a missing field', { type: 'auth' }, 4400, "'auth' requires 'token'"],
    ['a __proto__ key', '{"type":"message","data":{"__proto__":{"admin":true}}}', 4400, "frame contains the forbidden key '__proto__'"],
    ['a constructor key', { type: 'message', data: { constructor: { prototype: 1 } } }, 4400, "frame contains the forbidden key 'constructor'"],
    ['1,000-deep nesting', { type: 'message', data: nested(1_000) }, 4400, 'frame nests deeper than 32 levels'],
  ])('closes %s with its code and reason, and keeps serving others', async (_name, frame, code, reason) => {
    server = await startServer();
    const canary = await TestSocket.authenticated(server, 'bob');
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send(frame);
    expect(await socket.closed).toEqual({ code, reason });
    expect(await server.gateway.sendToUser('bob', 'still fine')).toBe(1);
    expect(await canary.next('message')).toMatchObject({ type: 'message', data: 'still fine' });
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    canary.close();
  });

  it('closes 1003 on a binary frame', async () => {
    server = await startServer();
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await socket.closed).toEqual({ code: 1003, reason: 'binary frames are not accepted' });
  });

  it('closes 1009 on a frame over maxPayload (64 KiB by default)', async () => {
    server = await startServer();
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'message', data: 'x'.repeat(70_000) });
    expect((await socket.closed).code).toBe(1009);
  });

  it('closes 1007 on invalid UTF-8 in a text frame', async () => {
    server = await startServer();
    const socket = await TestSocket.authenticated(server, 'alice');
    // ws validates outgoing text only when asked; send raw bytes as a text frame.
    socket.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await socket.closed).code).toBe(1007);
  });
});

describe('upgrade checks', () => {
  it('refuses with 400 when the authsocket.v1 subprotocol is not offered', async () => {
    server = await startServer();
    const refused = await refusal(TestSocket.open(server.wsUrl, { protocols: ['graphql-ws'] }));
    expect(refused).toMatchObject({ status: 400, body: 'bad request' });
  });

  it('refuses origins outside the allowlist with 403, exact match only', async () => {
    server = await startServer({ allowedOrigins: ['https://app.example.com'] });
    for (const origin of ['null', 'https://evil.example', 'https://app.example.com.evil.com', 'http://app.example.com', 'https://app.example.com:8443']) {
      const refused = await refusal(TestSocket.open(server.wsUrl, { headers: { origin } }));
      expect(refused.status, origin).toBe(403);
    }
    const allowed = await TestSocket.open(server.wsUrl, { headers: { origin: 'https://app.example.com' } });
    allowed.close();
  });

  it('answers 429 with Retry-After when one address opens too many upgrades', async () => {
    server = await startServer({ upgradeRateLimit: { limit: 3, windowMs: 10_000 } });
    for (let i = 0; i < 3; i++) (await TestSocket.open(server.wsUrl)).close();
    const refused = await refusal(TestSocket.open(server.wsUrl));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('10');
  });

  it('refuses upgrades to other paths with 404 when a path is set', async () => {
    server = await startServer({ path: '/ws' });
    expect((await refusal(TestSocket.open(`${server.wsUrl}other`))).status).toBe(404);
    expect((await refusal(TestSocket.open(`${server.wsUrl}other?ws`))).status).toBe(404);
    (await TestSocket.open(`${server.wsUrl}ws`)).close();
    (await TestSocket.open(`${server.wsUrl}ws?client=1`)).close();
  });

  it('refuses an upgrade whose URL cannot be parsed with 400 and keeps serving', async () => {
    server = await startServer();
    const statusLine = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(server.origin).port), '127.0.0.1');
      socket.on('error', reject);
      socket.once('data', (data) => {
        resolve(String(data).split('\r\n')[0] ?? '');
        socket.destroy();
      });
      socket.write(
        'GET //[?x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Protocol: authsocket.v1\r\n\r\n',
      );
    });
    expect(statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect((await fetch(`${server.origin}/healthz`)).status).toBe(200);
  });

  it('survives thousands of headers with a fast 431 and keeps serving', async () => {
    server = await startServer();
    const status = await new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 3_000; i++) headers[`x-h${i}`] = 'v'.repeat(20);
      const req = http.request(`${server.origin}/healthz`, { headers });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    expect((await fetch(`${server.origin}/healthz`)).status).toBe(200);
  });
});

describe('rate limits', () => {
  it('closes 4429 after too many frames, telling the client when to come back', async () => {
    server = await startServer({ messageRateLimit: { limit: 5, windowMs: 1_000 } });
    const socket = await TestSocket.authenticated(server, 'alice');
    for (let i = 0; i < 10; i++) socket.send({ type: 'ping' });
    expect(await socket.closed).toEqual({ code: 4429, reason: 'rate limited' });
    const error = socket.frames.find((frame) => frame.type === 'error');
    expect(error).toEqual({ type: 'error', code: 'rate_limited', message: 'rate limited', retryAfter: 1_000 });
  });

  it('closes 4429 after too many auth attempts', async () => {
    server = await startServer({ authRateLimit: { limit: 2, windowMs: 60_000 } });
    const socket = await TestSocket.open(server.wsUrl);
    const token = await server.token('alice');
    for (let i = 0; i < 3; i++) socket.send({ type: 'auth', token });
    expect((await socket.closed).code).toBe(4429);
    expect(socket.frames.filter((frame) => frame.type === 'auth_ok')).toHaveLength(2);
  });
});

describe('slow consumers and dead peers', () => {
  const closeCode = (target: TestServer) =>
    new Promise<number>((resolve) => target.gateway.once('close', ({ code }) => resolve(code)));

  it('closes 4008 when a peer stops reading and the outbound buffer passes its bound', async () => {
    server = await startServer({ maxBufferedBytes: 64 * 1024 });
    const raw = await openRawSocket(server);
    raw.write(clientTextFrame(JSON.stringify({ type: 'auth', token: await server.token('alice') })));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.gateway.connectionCount('alice')).toBe(1);
    const closed = closeCode(server);
    const chunk = 'x'.repeat(32 * 1024);
    // Bounded: the kernel buffers a few MB before ws starts buffering; 64 MB is far beyond that.
    for (let i = 0; i < 2_000 && server.gateway.connectionCount('alice') === 1; i++) {
      await server.gateway.sendToUser('alice', chunk);
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await closed).toBe(4008);
    raw.destroy();
  });

  it('terminates a half-open peer that stops answering pings', async () => {
    server = await startServer({ heartbeatIntervalMs: 50 });
    const raw = await openRawSocket(server);
    raw.write(clientTextFrame(JSON.stringify({ type: 'auth', token: await server.token('alice') })));
    expect(await closeCode(server)).toBe(1006);
    expect(server.gateway.connectionCount()).toBe(0);
    raw.destroy();
  });
});

describe('shutdown and health', () => {
  it('answers /healthz with its node id and connection count, and /livez while it serves', async () => {
    server = await startServer({ nodeId: 'node-a.1' });
    const socket = await TestSocket.authenticated(server, 'alice');
    const response = await fetch(`${server.origin}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', broker: 'ready', node: 'node-a.1', connections: 1 });
    const live = await fetch(`${server.origin}/livez`);
    expect([live.status, await live.json()]).toEqual([200, { status: 'live', node: 'node-a.1' }]);
    socket.close();
  });

  it('names itself with a random node id by default and refuses an unusable one', async () => {
    server = await startServer();
    const { node } = (await (await fetch(`${server.origin}/healthz`)).json()) as { node: string };
    expect(node).toMatch(/^[\w-]{8}$/);
    for (const nodeId of ['', 'a b', 'x'.repeat(129), 'id\n']) {
      expect(() => createGateway({ jwt: { secret: SECRET }, nodeId })).toThrow("invalid option 'nodeId'");
    }
  });

  it('closes every connection with 1001 on close()', async () => {
    server = await startServer();
    const sockets = [await TestSocket.authenticated(server, 'alice'), await TestSocket.open(server.wsUrl)];
    await server.gateway.close();
    for (const socket of sockets) expect(await socket.closed).toEqual({ code: 1001, reason: 'server shutting down' });
  });
});

describe('connections per user', () => {
  it('closes the connection past maxConnectionsPerUser 4409, leaves other users alone, and admits again once one closed', async () => {
    const server = await startServer({ maxConnectionsPerUser: 2 });
    try {
      const first = await TestSocket.authenticated(server, 'alice');
      await TestSocket.authenticated(server, 'alice');
      const third = await TestSocket.open(server.wsUrl);
      third.send({ type: 'auth', token: await server.token('alice') });
      expect(await third.closed).toEqual({ code: 4409, reason: 'too many connections for this user' });
      await TestSocket.authenticated(server, 'bob');
      first.close();
      await first.closed;
      const again = await TestSocket.authenticated(server, 'alice');
      expect(again.frames[0]).toMatchObject({ type: 'auth_ok', user: 'alice' });
      expect(server.gateway.connectionCount('alice')).toBe(2);
    } finally {
      await server.close();
    }
  });
});

describe('an upgrade without a subprotocol', () => {
  it('is refused 400 by default, and taken as authsocket.v1 with acceptNoSubprotocol: the first auth frame then authenticates it', async () => {
    const strict = await startServer();
    try {
      expect(await refusal(TestSocket.open(strict.wsUrl, { protocols: [] }))).toMatchObject({ status: 400 });
    } finally {
      await strict.close();
    }
    const lenient = await startServer({ acceptNoSubprotocol: true });
    try {
      const socket = await TestSocket.open(lenient.wsUrl, { protocols: [] });
      expect(socket.ws.protocol).toBe('');
      socket.send({ type: 'auth', token: await lenient.token('alice') });
      expect(await socket.next('auth_ok')).toMatchObject({ user: 'alice' });
      // Offering something else is still not the protocol.
      expect(await refusal(TestSocket.open(lenient.wsUrl, { protocols: ['graphql-ws'] }))).toMatchObject({ status: 400 });
      socket.close();
    } finally {
      await lenient.close();
    }
  });
});
