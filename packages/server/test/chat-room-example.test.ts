import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestSocket } from './helpers.js';

/** The README's worked example, examples/chat-room/server.mjs, run as a process and used by real sockets. */
const SERVER = fileURLToPath(new URL('../../../examples/chat-room/server.mjs', import.meta.url));

let child: ChildProcess;
let base: string;
const sockets: TestSocket[] = [];

beforeAll(async () => {
  child = spawn(process.execPath, [SERVER], { env: { ...process.env, JWT_SECRET: 'x'.repeat(32), PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  base = (/http:\/\/[\d.]+:\d+/.exec(line.toString()) as RegExpExecArray)[0];
});

afterAll(() => {
  for (const socket of sockets) socket.close();
  child.kill('SIGKILL');
});

async function join(user: string, name: string): Promise<TestSocket> {
  const { token } = (await (await fetch(`${base}/login`, { method: 'POST', body: JSON.stringify({ user, name }) })).json()) as { token: string };
  const socket = await TestSocket.open(`${base.replace('http', 'ws')}/ws`);
  sockets.push(socket);
  socket.send({ type: 'auth', token });
  await socket.next('auth_ok');
  return socket;
}

describe('the chat room example', () => {
  it('shows who is in the room, announces joins and leaves, and keeps each inbox private', async () => {
    const alice = await join('alice', 'Alice');
    alice.send({ type: 'subscribe', topic: 'room:lobby', id: 's1' });
    await alice.next('join');
    const bob = await join('bob', 'Bob');
    bob.send({ type: 'subscribe', topic: 'room:lobby', id: 's1' });
    const bobJoined = await alice.collect('join', 2);
    expect(bobJoined[1]).toMatchObject({ topic: 'room:lobby', member: { user: 'bob', info: 'Bob' } });

    alice.send({ type: 'presence', topic: 'room:lobby', id: 'p1' });
    const presence = await alice.next('presence');
    expect(presence.count).toBe(2);
    expect(presence.members?.map((member) => `${member.user}:${String(member.info)}`).sort()).toEqual(['alice:Alice', 'bob:Bob']);

    bob.send({ type: 'publish', topic: 'room:lobby', data: { text: 'hi all' }, id: 'm1' });
    expect((await alice.next('message')).data).toEqual({ text: 'hi all' });

    // Each user reads their own inbox, never another's.
    alice.send({ type: 'subscribe', topic: 'user:alice:inbox', id: 's2' });
    bob.send({ type: 'subscribe', topic: 'user:alice:inbox', id: 's2' });
    expect(await bob.next('error')).toMatchObject({ id: 's2', code: 'forbidden' });
    await alice.settle();
    expect(await (await fetch(`${base}/notify/alice`, { method: 'POST' })).json()).toEqual({ delivered: 1 });
    expect((await alice.collect('message', 2))[1]).toMatchObject({ topic: 'user:alice:inbox', data: { text: 'you have mail' } });

    bob.close();
    expect((await alice.next('leave')).member).toMatchObject({ user: 'bob', info: 'Bob' });
  });
});
