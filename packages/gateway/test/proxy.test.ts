import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExampleBackend } from './example-backend.js';
import { API_KEY, buildCli } from './helpers.js';
import { Resources, until } from './multinode/harness/cleanup.js';
import { ProtocolClient, signToken } from './multinode/harness/clients.js';
import { GatewayNode } from './multinode/harness/gateway-node.js';
import { freePorts, RedisServer } from './multinode/harness/redis.js';

/**
 * The HTTP event proxy end to end, every part a real process: two `authsocket serve` nodes on one
 * Redis with every --proxy-*-url pointing at examples/proxy-backend (Express), which replies to a
 * connection asynchronously through the *other* node's HTTP API. Clients speak authsocket.v1.
 */

const PROXY_SECRET = 'proxy-test-secret-of-at-least-32-bytes!!';
const resources = new Resources();
let a: GatewayNode;
let b: GatewayNode;
let backend: ExampleBackend;

beforeAll(async () => {
  buildCli();
  const redis = resources.add(await RedisServer.start(), (server) => server.stop());
  const [port] = (await freePorts(1)) as [number];
  const proxy = ['connect', 'refresh', 'subscribe', 'publish', 'rpc', 'disconnect'].flatMap((event) => [
    `--proxy-${event}-url`,
    `http://127.0.0.1:${port}/authsocket/${event}`,
  ]);
  const args = [...proxy, '--proxy-timeout', '1s'];
  const env = { AUTHSOCKET_PROXY_SECRET: PROXY_SECRET };
  [a, b] = (await Promise.all(
    ['A', 'B'].map(async (name) => resources.add(await GatewayNode.start({ name, redis: ['--redis-url', redis.url], args, env }), (n) => n.kill())),
  )) as [GatewayNode, GatewayNode];
  // The backend answers through node B's API while the sockets below are on node A.
  backend = resources.add(await ExampleBackend.start(port, { secret: PROXY_SECRET, apiKey: API_KEY, gatewayUrl: b.url }), (child) => child.kill());
}, 60_000);

afterAll(() => resources.disposeAll());

const client = async (user: string) => resources.add(await ProtocolClient.authenticated(a.wsUrl, user), (socket) => socket.terminate());

describe('the HTTP event proxy, through examples/proxy-backend', () => {
  it("admits with the backend's data and topics, and closes with its refusal", async () => {
    const alice = await client('alice');
    expect(alice.authOk?.data).toEqual({ greeting: 'hello alice' });
    expect(alice.authOk?.streams?.['topic:inbox:alice']).toMatchObject({ offset: 0 });
    expect((await b.publish('inbox:alice', 'to the inbox')).status).toBe(200);
    await alice.next((frame) => frame.type === 'message' && frame.data === 'to the inbox');

    const mallory = resources.add(new ProtocolClient(a.wsUrl), (socket) => socket.terminate());
    await once(mallory.socket, 'open');
    mallory.send({ type: 'auth', token: await signToken('mallory') });
    expect(await mallory.closed).toEqual({ code: 4403, reason: 'banned' });
  });

  it('answers an rpc with the backend result, and a later reply to this one connection arrives through the other node', async () => {
    const alice = await client('alice');
    const other = await client('alice');
    alice.send({ type: 'rpc', id: 'r1', method: 'time' });
    const time = await alice.next((frame) => frame.type === 'result');
    expect(time).toMatchObject({ id: 'r1', data: { for: 'alice' } });

    alice.send({ type: 'rpc', id: 'r2', method: 'later', data: { job: 7 } });
    expect(await alice.next((frame) => frame.type === 'result' && frame.id === 'r2')).toMatchObject({ data: { queued: true } });
    const done = await alice.next((frame) => frame.type === 'message' && (frame.data as { type?: string }).type === 'notifications/added');
    expect(done).toMatchObject({ data: { payload: { text: 'Your job is done', job: { job: 7 } } } });
    alice.send({ type: 'rpc', id: 'r3', method: 'nope' });
    expect(await alice.next((frame) => frame.type === 'error' && frame.id === 'r3')).toMatchObject({ code: 'not_found' });
    // Measured per event and outcome: three rpcs answered, none in flight.
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(Number(/authsocket_proxy_request_duration_seconds_count\{event="rpc",outcome="ok"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
    expect(metrics).toContain('authsocket_proxy_in_flight{event="rpc"} 0');
    // The reply went to one connection, not to the user's every socket.
    other.send({ type: 'ping', id: 'p' });
    await other.next((frame) => frame.type === 'pong');
    expect(other.messages().filter((m) => (m.data as { type?: string }).type === 'notifications/added')).toEqual([]);
  });

  it('lets the backend refuse a subscribe with an error frame and rewrite a publish', async () => {
    const bob = await client('bob');
    expect(await bob.subscribe('admin:ops').catch((error: Error) => error.message)).toMatch(/not allowed/);
    await bob.subscribe('room:1');
    const alice = await client('alice');
    alice.send({ type: 'publish', topic: 'room:1', data: { text: 'hi', from: 'the queen' }, id: 'p1' });
    await alice.next((frame) => frame.type === 'ack' && frame.id === 'p1');
    const posted = await bob.next((frame) => frame.type === 'message' && frame.stream === 'topic:room:1');
    expect(posted).toMatchObject({ data: { text: 'hi', from: 'alice' } });
  });

  it('with the backend down: an rpc answers unavailable (temporary) on a socket that stays open, a new connection closes 1013', async () => {
    const alice = await client('alice');
    await backend.kill();
    alice.send({ type: 'rpc', id: 'down', method: 'time' });
    expect(await alice.next((frame) => frame.type === 'error' && frame.id === 'down')).toMatchObject({ code: 'unavailable', temporary: true });
    alice.send({ type: 'ping', id: 'still' });
    await alice.next((frame) => frame.type === 'pong' && frame.id === 'still');

    const late = resources.add(new ProtocolClient(a.wsUrl), (socket) => socket.terminate());
    await once(late.socket, 'open');
    late.send({ type: 'auth', token: await signToken('carol') });
    expect((await late.closed).code).toBe(1013);
    // Logged as a refused request, never with the token.
    await until('the proxy logs the refusal', () => a.output.stdout.includes('"component":"proxy"'), { timeoutMs: 5_000 });
    expect(a.output.stdout).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(a.output.stdout).not.toContain(PROXY_SECRET);
  });
});
