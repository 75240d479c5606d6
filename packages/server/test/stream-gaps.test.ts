import type { StreamPosition } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Broker,
  type BrokerHandlers,
  type HistoryRead,
  MemoryBroker,
  MemoryRevocationStore,
  type Publication,
  type PublishOptions,
} from '../src/index.js';
import { startServer, TestSocket, type TestServer } from './helpers.js';

/**
 * A real MemoryBroker with the faults of a remote link put on its delivery path: publications can be
 * held back (still on their way, as on a Redis subscriber connection), lost, or re-labelled with
 * another epoch (history lost meanwhile); `position` answers asynchronously, as a remote store does.
 * History itself stays right, so a resume can repair what the live path lost.
 */
class LossyBroker implements Broker {
  readonly inner = new MemoryBroker();
  handlers: BrokerHandlers | undefined;
  /** Publications taken off the live path until `release()`. */
  readonly inFlight: Publication[] = [];
  holding = false;
  dropNext = 0;
  relabelEpoch: string | undefined;

  async publish(publication: Publication, options?: PublishOptions): Promise<number> {
    return this.inner.publish(publication, options);
  }
  control(): Promise<void> {
    return Promise.resolve();
  }
  position(stream: string): Promise<StreamPosition> {
    return this.inner.position(stream);
  }
  read(stream: string, after: StreamPosition): Promise<HistoryRead> {
    return this.inner.read(stream, after);
  }
  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
    await this.inner.start({
      publication: (publication) => {
        if (this.dropNext > 0) {
          this.dropNext--;
          return 0;
        }
        const delivered = this.relabelEpoch ? { ...publication, epoch: this.relabelEpoch } : publication;
        if (this.holding) {
          this.inFlight.push(delivered);
          return 0;
        }
        return handlers.publication(delivered);
      },
      control: handlers.control,
    });
  }
  release(): void {
    this.holding = false;
    for (const publication of this.inFlight.splice(0)) this.handlers?.publication(publication);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let server: TestServer;
let other: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  await other?.close();
  other = undefined;
});

const offsetsOf = (socket: TestSocket, stream: string) =>
  socket.frames.flatMap((frame) => (frame.type === 'message' && frame.stream === stream ? [frame.offset] : []));

describe('a subscribe for a topic the connection already reads', () => {
  it('changes nothing while publications are still on their way: none lost, none twice, in order', async () => {
    const broker = new LossyBroker();
    server = await startServer({ broker });
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'subscribe', topic: 'news', id: 's1' });
    await socket.next('ack');
    for (let n = 1; n <= 3; n++) await server.gateway.publish('news', n);
    // 4 and 5 are in history but not yet delivered on this node when the client subscribes again.
    broker.holding = true;
    await server.gateway.publish('news', 4);
    await server.gateway.publish('news', 5);
    socket.send({ type: 'subscribe', topic: 'news', id: 's2' });
    const again = socket.frames.length;
    const ack = await socket.next('ack', again);
    expect(ack).toMatchObject({ id: 's2', streams: { 'topic:news': { offset: 3 } } });
    broker.release();
    await server.gateway.publish('news', 6);
    await socket.collect('message', 6);
    await socket.settle();
    expect(offsetsOf(socket, 'topic:news')).toEqual([1, 2, 3, 4, 5, 6]);
    socket.close();
  });

  it('does not replay from an older `since` what the connection already has', async () => {
    server = await startServer();
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'subscribe', topic: 'news', id: 's1' });
    const { streams } = await socket.next('ack');
    const epoch = streams?.['topic:news']?.epoch as string;
    for (let n = 1; n <= 3; n++) await server.gateway.publish('news', n);
    await socket.collect('message', 3);
    socket.send({ type: 'subscribe', topic: 'news', id: 's2', since: { epoch, offset: 1 } });
    const ack = await socket.next('ack', socket.frames.length);
    expect(ack.streams).toEqual({ 'topic:news': { epoch, offset: 3 } });
    await server.gateway.publish('news', 4);
    await socket.collect('message', 4);
    await socket.settle();
    expect(offsetsOf(socket, 'topic:news')).toEqual([1, 2, 3, 4]);
    socket.close();
  });
});

describe('a stream position the live path would skip', () => {
  it('closes 4009, and the resume replays what was lost, exactly once', async () => {
    const broker = new LossyBroker();
    server = await startServer({ broker });
    const first = await TestSocket.authenticated(server, 'alice');
    const ok = await first.next('auth_ok');
    const epoch = ok.streams?.['user:alice']?.epoch as string;
    await server.gateway.sendToUser('alice', 'one');
    broker.dropNext = 1;
    await server.gateway.sendToUser('alice', 'two (lost on the way)');
    await server.gateway.sendToUser('alice', 'three');
    expect(await first.closed).toEqual({ code: 4009, reason: 'stream gap: resume' });
    expect(offsetsOf(first, 'user:alice')).toEqual([1]);

    const second = await TestSocket.open(server.wsUrl);
    second.send({ type: 'auth', token: await server.token('alice'), resume: { 'user:alice': { epoch, offset: 1 } } });
    const resumed = await second.next('auth_ok');
    expect(resumed.streams?.['user:alice']).toEqual({ epoch, offset: 1, recovered: true });
    await second.collect('message', 2);
    expect(second.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : []))).toEqual([
      'two (lost on the way)',
      'three',
    ]);
    second.close();
  });

  it('closes 4009 on a publication of another epoch: history was lost, the client must be told', async () => {
    const broker = new LossyBroker();
    server = await startServer({ broker });
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'subscribe', topic: 'news', id: 's1' });
    await socket.next('ack');
    await server.gateway.publish('news', 'before');
    broker.relabelEpoch = 'another-epoch';
    await server.gateway.publish('news', 'after');
    expect(await socket.closed).toEqual({ code: 4009, reason: 'stream gap: resume' });
    expect(socket.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : []))).toEqual(['before']);
  });

  it('leaves the other connections alone', async () => {
    const broker = new LossyBroker();
    server = await startServer({ broker });
    const alice = await TestSocket.authenticated(server, 'alice');
    const bob = await TestSocket.authenticated(server, 'bob');
    broker.dropNext = 1;
    await server.gateway.sendToUser('alice', 1);
    await server.gateway.sendToUser('alice', 2);
    expect((await alice.closed).code).toBe(4009);
    await server.gateway.sendToUser('bob', 'fine');
    expect(await bob.next('message')).toMatchObject({ data: 'fine', offset: 1 });
    bob.close();
  });
});

describe('revocations after the broker link returns', () => {
  it("closes 4403 the sockets a revocation covers that this node never heard of, and only those", async () => {
    const revocationStore = new MemoryRevocationStore();
    const broker = new LossyBroker();
    // Two nodes sharing the revocation store; this node's broker never carries the control message.
    server = await startServer({ broker, revocationStore });
    other = await startServer({ revocationStore });
    const victim = await TestSocket.authenticated(server, 'mallory');
    const bystander = await TestSocket.authenticated(server, 'alice');
    await other.gateway.revokeUser('mallory');
    await victim.settle();
    expect(victim.ws.readyState).toBe(victim.ws.OPEN);
    // A login well after the revocation (past the clock tolerance) is not covered by it.
    server.clock.advance(10_000);
    const fresh = await TestSocket.authenticated(server, 'mallory');

    broker.handlers?.resync?.();
    expect(await victim.closed).toEqual({ code: 4403, reason: 'revoked' });
    await fresh.settle();
    await bystander.settle();
    expect([fresh.ws.readyState, bystander.ws.readyState]).toEqual([fresh.ws.OPEN, bystander.ws.OPEN]);
    fresh.close();
    bystander.close();
  });
});
