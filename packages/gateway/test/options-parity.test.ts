import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ServerMessage } from '@authsocket/protocol';
import { connectAs, login, start, stopAll, TestClient } from './helpers.js';

/** The answer to frame `id`: an ack, or the demo chat handler's refusal of data that is not a chat line; either way it was processed, not closed. */
const answerTo = (id: string) => (frame: ServerMessage) => (frame.type === 'ack' || frame.type === 'error') && 'id' in frame && frame.id === id;

// Server behaviours configured only by flags, through loadConfig and startGateway as `authsocket serve` runs them.
afterEach(stopAll);

/** The HTTP status an upgrade was refused with, or 101. */
function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('upgrade', () => resolve(101));
    socket.on('open', () => socket.close());
    socket.on('error', (error) => reject(error));
  });
}

describe('options set by flags reach the server', () => {
  it('--per-message-auth: a message without a token closes 4401', async () => {
    const gateway = await start(['--demo', '--per-message-auth']);
    const { client, token } = await connectAs(gateway);
    client.send({ type: 'message', id: 'm1', data: 'with', token });
    await client.next(answerTo('m1'));
    client.send({ type: 'message', id: 'm2', data: 'without' });
    expect((await client.closed).code).toBe(4401);
  });

  it('without --per-message-auth a message without a token is acknowledged', async () => {
    const gateway = await start(['--demo']);
    const { client } = await connectAs(gateway);
    client.send({ type: 'message', id: 'm1', data: 'without' });
    await client.next(answerTo('m1'));
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('--handshake-token: a token.<jwt> upgrade is accepted; without the flag it gets 400', async () => {
    const withFlag = await start(['--demo', '--handshake-token']);
    const token = await login(withFlag);
    const client = new TestClient(withFlag.wsUrl, [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`]);
    expect(await client.next((frame) => frame.type === 'auth_ok')).toMatchObject({ type: 'auth_ok' });
    client.close();

    const without = await start(['--demo']);
    const other = await login(without);
    expect(await upgradeStatus(without.wsUrl, [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${other}`])).toBe(400);
  });

  it('--max-payload: a bigger frame closes 1009, a smaller one does not', async () => {
    const gateway = await start(['--demo', '--max-payload', '1KiB']);
    const { client } = await connectAs(gateway);
    client.send({ type: 'message', id: 'small', data: 'x'.repeat(500) });
    await client.next(answerTo('small'));
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.send({ type: 'message', id: 'big', data: 'x'.repeat(2_000) });
    expect((await client.closed).code).toBe(1009);
  });

  it('--close-on-logout: logout closes 1000', async () => {
    const gateway = await start(['--demo', '--close-on-logout']);
    const { client } = await connectAs(gateway);
    client.send({ type: 'logout' });
    expect((await client.closed).code).toBe(1000);
  });
});
