import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientTextFrame, openRawSocket, startServer, type TestServer, TestSocket } from './helpers.js';

// A payload shared by many sockets is framed once and written to each TCP socket directly, beside
// ws's own writes (one-off frames, pings, the close frame). These check that nothing overtakes
// anything: per-socket order across a burst, the close frame last, slow consumers still closed.

let server: TestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface WireFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Splits unmasked server frames (payloads under 64 KiB) out of the bytes read so far. */
function parseFrames(bytes: Buffer): WireFrame[] {
  const frames: WireFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] as number) & 0x0f;
    let length = (bytes[at + 1] as number) & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (at + 4 > bytes.length) break;
      length = bytes.readUInt16BE(at + 2);
      start = at + 4;
    }
    if (start + length > bytes.length) break;
    frames.push({ opcode, payload: bytes.subarray(start, start + length) });
    at = start + length;
  }
  return frames;
}

/** Reads the raw socket until it ends or `done(frames)` holds; bounded by `timeoutMs`. */
function readFrames(raw: net.Socket, done: (frames: WireFrame[]) => boolean, timeoutMs = 5_000): Promise<WireFrame[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no complete answer in ${timeoutMs} ms`)), timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      resolve(parseFrames(Buffer.concat(chunks)));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      if (done(parseFrames(Buffer.concat(chunks)))) finish();
    };
    raw.on('data', onData);
    raw.once('end', finish);
    raw.resume();
  });
}

const text = (frame: WireFrame) => JSON.parse(frame.payload.toString()) as { type: string; data?: unknown };

describe('fan-out frames written once for every socket', () => {
  it('keeps each socket’s order across a burst of shared and one-off frames in one tick', async () => {
    server = await startServer();
    const { gateway } = server;
    const ids: string[] = [];
    gateway.on('authenticated', ({ connection }) => ids.push(connection.id));
    const sockets = await Promise.all(Array.from({ length: 20 }, (_, i) => TestSocket.authenticated(server as TestServer, `u${i % 5}`)));
    for (const socket of sockets) socket.send({ type: 'subscribe', topic: 'room', id: 's' });
    await Promise.all(sockets.map((socket) => socket.next('ack')));
    expect(ids).toHaveLength(20);
    // One tick: broadcasts, topic publishes and pushes (a frame shared by many sockets) interleaved
    // with sendToConnection (a frame of its own per socket, so the shared frame is rebuilt after).
    for (let i = 0; i < 32; i++) {
      const kind = i % 4;
      if (kind === 0) void gateway.broadcast({ n: i });
      else if (kind === 1) void gateway.publish('room', { n: i });
      else if (kind === 2) for (let user = 0; user < 5; user++) void gateway.sendToUser(`u${user}`, { n: i });
      else for (const id of ids) void gateway.sendToConnection(id, { n: i });
    }
    const expected = Array.from({ length: 32 }, (_, i) => i);
    for (const socket of sockets) {
      const messages = await socket.collect('message', expected.length);
      expect(messages.map((frame) => (frame.data as { n: number }).n)).toEqual(expected);
    }
    for (const socket of sockets) socket.close();
  });

  it('writes the close frame last: a frame sent after closing in the same tick is dropped', async () => {
    server = await startServer();
    const { gateway } = server;
    const raw = await openRawSocket(server);
    const authenticated = new Promise<string>((resolve) => gateway.once('authenticated', ({ connection }) => resolve(connection.id)));
    raw.write(clientTextFrame(JSON.stringify({ type: 'auth', token: await server.token('alice') })));
    const id = await authenticated;
    // Consume `auth_ok` first, then start a clean read for what follows.
    await readFrames(raw, (frames) => frames.some((frame) => frame.opcode === 0x1));
    raw.pause();
    void gateway.sendToUser('alice', 'before');
    void gateway.broadcast('before, to everyone');
    await gateway.closeConnection(id, 4000, 'bye');
    void gateway.sendToUser('alice', 'after');
    void gateway.broadcast('after, to everyone');
    const frames = await readFrames(raw, (read) => read.some((frame) => frame.opcode === 0x8));
    raw.destroy();
    expect(frames.map((frame) => frame.opcode)).toEqual([0x1, 0x1, 0x8]);
    expect(frames.slice(0, 2).map((frame) => text(frame).data)).toEqual(['before', 'before, to everyone']);
    const close = frames[2] as WireFrame;
    expect([close.payload.readUInt16BE(0), close.payload.subarray(2).toString()]).toEqual([4000, 'bye']);
  });

  it('still closes 4008 the one socket of a broadcast that stops reading, and the others get every frame', async () => {
    server = await startServer({ maxBufferedBytes: 64 * 1024 });
    const { gateway } = server;
    const raw = await openRawSocket(server);
    raw.write(clientTextFrame(JSON.stringify({ type: 'auth', token: await server.token('stuck') })));
    const readers = await Promise.all([TestSocket.authenticated(server, 'r1'), TestSocket.authenticated(server, 'r2')]);
    // Bounded polling: wait for the raw peer's auth to land.
    for (let i = 0; i < 100 && gateway.connectionCount('stuck') === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(gateway.connectionCount('stuck')).toBe(1);
    const closed = new Promise<number>((resolve) =>
      gateway.on('close', ({ connection, code }) => connection.user === 'stuck' && resolve(code)),
    );
    const chunk = 'x'.repeat(16 * 1024);
    let sent = 0;
    // Bounded: the kernel buffers a few MB before ws's writable length grows; 32 MB is far beyond.
    for (let i = 0; i < 2_000 && gateway.connectionCount('stuck') === 1; i++) {
      await gateway.broadcast({ i, chunk });
      sent++;
      if (i % 10 === 0) {
        // The readers read as they go, so only the stuck one falls behind.
        await Promise.all(readers.map((reader) => reader.collect('message', sent)));
      }
    }
    expect(await closed).toBe(4008);
    for (const reader of readers) {
      const messages = await reader.collect('message', sent);
      expect(messages.map((frame) => (frame.data as { i: number }).i)).toEqual(Array.from({ length: sent }, (_, i) => i));
      reader.close();
    }
    raw.destroy();
  });
});
