import { MessageType } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamPosition } from '@authsocket/protocol';
import type { ConnectionRecord, ConnectionStore } from '../src/connection-store.js';
import { MemoryBroker } from '../src/memory-broker.js';
import { resolveOptions } from '../src/options.js';
import { memoryGateway, type MemorySocket, until } from './memory-transport.js';

type Core = ReturnType<typeof memoryGateway>;
let current: Core | undefined;

afterEach(async () => {
  await current?.gateway.close();
  current = undefined;
});

/** A store in memory remembering every write, to tell "nothing written" from "written and deleted". */
class RecordingStore implements ConnectionStore {
  readonly leaseMs = 0;
  readonly writes: string[] = [];
  started: string | undefined;
  held: (() => Iterable<ConnectionRecord>) | undefined;
  readonly #byId = new Map<string, ConnectionRecord>();

  async start(node: string, held: () => Iterable<ConnectionRecord>): Promise<void> {
    this.started = node;
    this.held = held;
  }

  put(record: ConnectionRecord): void {
    this.writes.push(`put ${record.id} ${record.state} ${record.expiresAt}`);
    this.#byId.set(record.id, record);
  }

  delete(id: string): void {
    this.writes.push(`delete ${id}`);
    this.#byId.delete(id);
  }

  async ofUser(user: string): Promise<readonly ConnectionRecord[]> {
    return [...this.#byId.values()].filter((record) => record.user === user);
  }

  async get(id: string): Promise<ConnectionRecord | undefined> {
    return this.#byId.get(id);
  }

  async countsByNode(): Promise<Readonly<Record<string, number>>> {
    const counts: Record<string, number> = {};
    for (const { node } of this.#byId.values()) counts[node] = (counts[node] ?? 0) + 1;
    return counts;
  }

  async close(): Promise<void> {
    this.#byId.clear();
  }
}

function start(options: Parameters<typeof memoryGateway>[0] = {}): Core {
  current = memoryGateway({ nodeId: 'node-a', ...options });
  return current;
}

async function authenticate(core: Core, socket: MemorySocket, user = 'alice', expiresIn = 300): Promise<void> {
  const before = socket.sent.filter((frame) => frame.type === MessageType.AuthOk).length;
  socket.receive({ type: MessageType.Auth, token: await core.token(user, expiresIn) });
  await until(() => socket.sent.filter((frame) => frame.type === MessageType.AuthOk).length > before || socket.closedWith !== undefined);
  expect(socket.closedWith).toBeUndefined();
}

describe('the connection registry follows sessions', () => {
  it('lists a connection once it is authenticated, with its node, opening time and token expiry', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store });
    expect(store.started).toBe('node-a');
    const socket = await core.connect();
    expect(await core.gateway.connections('alice')).toEqual([]);
    const openedAt = core.clock.now();
    await authenticate(core, socket, 'alice', 300);
    const [record] = await core.gateway.connections('alice');
    expect(record).toEqual({
      id: socket.events?.id,
      user: 'alice',
      node: 'node-a',
      openedAt,
      expiresAt: Math.floor(openedAt / 1000) * 1000 + 300_000,
      state: 'authenticated',
    });
    expect(await core.gateway.connection(record?.id as string)).toEqual(record);
    expect(await core.gateway.connectionsByNode()).toEqual({ 'node-a': 1 });
  });

  it('moves expiresAt on a reauth, and records the held state and its release', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store, reauthWindowMs: 0, reauthGraceMs: 60_000 });
    const socket = await core.connect();
    await authenticate(core, socket, 'alice', 10);
    const id = socket.events?.id as string;
    const first = (await core.gateway.connection(id))?.expiresAt as number;
    core.clock.advance(10_000);
    expect(await core.gateway.connection(id)).toMatchObject({ state: 'held', expiresAt: first });
    await authenticate(core, socket, 'alice', 600);
    const renewed = await core.gateway.connection(id);
    expect(renewed?.state).toBe('authenticated');
    expect(renewed?.expiresAt).toBeGreaterThan(first);
    expect(renewed?.expiresAt).toBe(Math.floor(core.clock.now() / 1000) * 1000 + 600_000);
  });

  it('deletes the record on logout, under the id the connection had, and lists the new id on the next auth', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store });
    const socket = await core.connect();
    await authenticate(core, socket);
    const before = socket.events?.id as string;
    socket.receive({ type: MessageType.Logout });
    expect(store.writes.at(-1)).toBe(`delete ${before}`);
    expect(await core.gateway.connection(before)).toBeUndefined();
    expect(await core.gateway.connections('alice')).toEqual([]);
    await authenticate(core, socket, 'alice');
    const after = await core.gateway.connections('alice');
    expect(after.map((record) => record.id)).toEqual([socket.events?.id]);
    expect(after[0]?.id).not.toBe(before);
  });

  it('deletes the record when the socket closes', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store });
    const one = await core.connect();
    const two = await core.connect();
    await authenticate(core, one);
    await authenticate(core, two);
    expect(await core.gateway.connections('alice')).toHaveLength(2);
    one.terminate();
    expect(store.writes.at(-1)).toBe(`delete ${one.events?.id}`);
    expect((await core.gateway.connections('alice')).map((record) => record.id)).toEqual([two.events?.id]);
    expect(await core.gateway.connectionsByNode()).toEqual({ 'node-a': 1 });
  });

  it('never writes a connection that did not authenticate', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store, authTimeoutMs: 1_000 });
    const socket = await core.connect();
    core.clock.advance(1_000);
    await until(() => socket.readyState === 3);
    expect(store.writes).toEqual([]);
  });

  it('by default holds no copy: answers from this node\'s own sessions, state and expiry included', async () => {
    expect(resolveOptions({ jwt: { secret: 'x'.repeat(32) } }).connectionStore).toBe(false);
    const core = start({ reauthWindowMs: 0, reauthGraceMs: 60_000 });
    const socket = await core.connect();
    const openedAt = core.clock.now();
    await authenticate(core, socket, 'alice', 10);
    const id = socket.events?.id as string;
    const expiresAt = Math.floor(openedAt / 1000) * 1000 + 10_000;
    expect(await core.gateway.connections('alice')).toEqual([{ id, user: 'alice', node: 'node-a', openedAt, expiresAt, state: 'authenticated' }]);
    core.clock.advance(10_000);
    expect(await core.gateway.connection(id)).toMatchObject({ state: 'held', expiresAt });
    await authenticate(core, socket, 'alice', 600);
    expect(await core.gateway.connection(id)).toMatchObject({ state: 'authenticated', expiresAt: Math.floor(core.clock.now() / 1000) * 1000 + 600_000 });
    socket.receive({ type: MessageType.Logout });
    expect(await core.gateway.connection(id)).toBeUndefined();
    expect(await core.gateway.connectionsByNode()).toEqual({ 'node-a': 0 });
    await authenticate(core, socket, 'alice');
    expect((await core.gateway.connections('alice')).map((record) => record.id)).toEqual([socket.events?.id]);
    socket.terminate();
    expect(await core.gateway.connections('alice')).toEqual([]);
  });

  it('writes nothing with connectionStore false, and answers from this node alone', async () => {
    const core = start({ connectionStore: false });
    const socket = await core.connect();
    await authenticate(core, socket, 'bob');
    const [record] = await core.gateway.connections('bob');
    expect(record).toMatchObject({ id: socket.events?.id, user: 'bob', node: 'node-a', state: 'authenticated' });
    expect(await core.gateway.connection(record?.id as string)).toEqual(record);
    expect(await core.gateway.connectionsByNode()).toEqual({ 'node-a': 1 });
    socket.terminate();
    expect(await core.gateway.connections('bob')).toEqual([]);
  });

  it('lists what a store rewrites after an outage: every bound session of this node', async () => {
    const store = new RecordingStore();
    const core = start({ connectionStore: store });
    const sockets = [await core.connect(), await core.connect(), await core.connect()];
    await authenticate(core, sockets[0] as MemorySocket, 'alice');
    await authenticate(core, sockets[1] as MemorySocket, 'bob');
    expect([...(store.held?.() ?? [])].map((record) => record.id).sort()).toEqual(
      [sockets[0]?.events?.id, sockets[1]?.events?.id].sort(),
    );
  });

  it('never lists (nor indexes) a socket that closed while its first bind read the broker', async () => {
    // A remote broker (no synchronous position): the bind awaits it, and the socket closes meanwhile.
    let release: () => void = () => {};
    let asked = false;
    const gate = new Promise<void>((resolve) => (release = resolve));
    class RemoteBroker extends MemoryBroker {
      override async position(stream: string): Promise<StreamPosition> {
        asked = true;
        await gate;
        return super.positionNow(stream);
      }
    }
    Object.defineProperty(RemoteBroker.prototype, 'positionNow', { value: undefined });
    const store = new RecordingStore();
    const core = start({ connectionStore: store, broker: new RemoteBroker() });
    const socket = await core.connect();
    socket.receive({ type: MessageType.Auth, token: await core.token('alice') });
    await until(() => asked);
    socket.terminate();
    release();
    // The bind's callback runs once the position read settles: a few turns of the event loop.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(store.writes).toEqual([]);
    expect(core.gateway.connectionCount('alice')).toBe(0);
    expect(await core.gateway.connections('alice')).toEqual([]);
  });
});
