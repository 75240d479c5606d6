import type { StreamPosition } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Broker,
  type BrokerHandlers,
  type ControlMessage,
  type HistoryRead,
  MemoryBroker,
  type Publication,
} from '../src/index.js';
import { startServer, TestSocket, type TestServer } from './helpers.js';

/**
 * Several nodes in one process: one shared history, and one ordered channel that hands each
 * publication to every node on a later turn of the event loop, as a network would.
 */
class Hub {
  readonly history = new MemoryBroker();
  readonly nodes = new Set<BrokerHandlers>();
  /** Deliver every publication a second time, later, to prove nodes drop duplicates. */
  duplicateLate = false;
  #channel = Promise.resolve();

  constructor() {
    // The shared history's own delivery is the channel's input.
    void this.history.start({ publication: () => 0, control: () => {} });
  }

  node(): Broker {
    let self: BrokerHandlers | undefined;
    return {
      publish: (publication: Publication) =>
        new Promise<number>((resolve) => {
          this.#channel = this.#channel.then(async () => {
            await this.history.publish(publication);
            const sent = publication.stream ? await this.#last(publication.stream) : publication;
            await new Promise((next) => setImmediate(next));
            for (const handlers of this.nodes) {
              const count = handlers.publication(sent);
              if (handlers === self) resolve(count);
            }
            if (this.duplicateLate) setTimeout(() => this.nodes.forEach((handlers) => handlers.publication(sent)), 5);
          });
        }),
      control: async (message: ControlMessage) => {
        for (const handlers of this.nodes) if (handlers !== self) setImmediate(() => handlers.control(message));
      },
      position: (stream: string): Promise<StreamPosition> => this.history.position(stream),
      read: (stream: string, after: StreamPosition): Promise<HistoryRead> => this.history.read(stream, after),
      start: async (handlers: BrokerHandlers) => {
        self = handlers;
        this.nodes.add(handlers);
      },
      close: async () => {
        if (self) this.nodes.delete(self);
      },
    };
  }

  async #last(stream: string): Promise<Publication> {
    const position = await this.history.position(stream);
    const read = await this.history.read(stream, { epoch: position.epoch, offset: position.offset - 1 });
    return read.publications[0] as Publication;
  }
}

let servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers) await server.close();
  servers = [];
});

async function cluster(size: number, hub: Hub): Promise<TestServer[]> {
  servers = [];
  for (let i = 0; i < size; i++) servers.push(await startServer({ broker: hub.node() }));
  return servers;
}

const data = (socket: TestSocket) => socket.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : []));

describe('a gateway on a shared broker', () => {
  it("reaches a user's connections on every node, once each", async () => {
    const [a, b, c] = await cluster(3, new Hub());
    const sockets = [await TestSocket.authenticated(a!, 'alice'), await TestSocket.authenticated(b!, 'alice'), await TestSocket.authenticated(c!, 'alice')];
    const bob = await TestSocket.authenticated(b!, 'bob');
    for (let i = 0; i < 50; i++) await [a, b, c][i % 3]!.gateway.sendToUser('alice', i);
    for (const socket of sockets) await socket.collect('message', 50);
    await Promise.all([...sockets, bob].map((socket) => socket.settle()));
    for (const socket of sockets) expect(data(socket)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(data(bob)).toEqual([]);
  });

  it('drops a publication delivered again after it arrived (duplicates from the network)', async () => {
    const hub = new Hub();
    hub.duplicateLate = true;
    const [a, b] = await cluster(2, hub);
    const onA = await TestSocket.authenticated(a!, 'alice');
    const onB = await TestSocket.authenticated(b!, 'alice');
    for (let i = 0; i < 20; i++) await a!.gateway.sendToUser('alice', i);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await onA.settle();
    await onB.settle();
    expect(data(onA)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(data(onB)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('resumes on another node from the shared history', async () => {
    const [a, b] = await cluster(2, new Hub());
    const first = await TestSocket.authenticated(a!, 'alice');
    await a!.gateway.sendToUser('alice', 'one');
    const one = await first.next('message');
    first.ws.terminate();
    await first.closed;
    await a!.gateway.sendToUser('alice', 'two');
    const second = await TestSocket.open(b!.wsUrl);
    second.send({
      type: 'auth',
      token: await b!.token('alice'),
      resume: { 'user:alice': { epoch: one.epoch as string, offset: one.offset as number } },
    });
    expect((await second.next('auth_ok')).streams?.['user:alice']).toMatchObject({ recovered: true });
    expect(await second.next('message')).toMatchObject({ data: 'two', offset: 2 });
    second.close();
  });

  it('closes a revoked user’s sockets on every node', async () => {
    const [a, b] = await cluster(2, new Hub());
    const onA = await TestSocket.authenticated(a!, 'alice');
    const onB = await TestSocket.authenticated(b!, 'alice');
    await b!.gateway.revokeUser('alice');
    expect((await onA.closed).code).toBe(4403);
    expect((await onB.closed).code).toBe(4403);
  });
});
