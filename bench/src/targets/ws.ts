import http from 'node:http';
import type { Duplex } from 'node:stream';
import { jwtVerify } from 'jose';
import * as wsModule from 'ws';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type AppData, AUDIENCE, ISSUER, SECRET_KEY, type ServerConfig } from '../common.js';
import type { TargetServer } from './types.js';

const AUTH_TIMEOUT_MS = 10_000;

/** ws's `Sender.frame` (exported, not in @types/ws): a final, unmasked, uncompressed text frame. */
const senderFrame = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame;
const TEXT_FRAME = { fin: true, opcode: 0x1, mask: false, readOnly: false, rsv1: false };

/** `ws-floor`'s sockets keep their TCP socket in a field, as authsocket's do: no lookup per delivery. */
class FloorSocket extends WebSocket {
  wire!: Duplex;
}

interface Client {
  user: string | undefined;
  expiresAt: number;
  /** Topics subscribed to; allocated at the first subscribe. */
  topics: Set<string> | undefined;
  authTimer: NodeJS.Timeout | undefined;
  reauthTimer: NodeJS.Timeout | undefined;
}

/**
 * The seeds' approach, written as a careful developer would by hand: `ws`, first message
 * `{type: 'auth', token}` verified with jose HS256, a user -> sockets map, `auth_ok`, a timer per
 * socket for the auth deadline (and, under expiry churn, for the refresh warning).
 */
export function startWs(config: ServerConfig): TargetServer {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  // `ws-floor`: the least a Node server can do per delivery through public APIs, so what is left is
  // Node's write path and the kernel's. The frame (header + payload) is built once, by ws's own
  // `Sender.frame`, and that one Buffer is written to each upgraded TCP socket.
  const floor = config.target === 'ws-floor';
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 65_536,
    clientTracking: false,
    ...(floor ? { WebSocket: FloorSocket } : {}),
  });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (floor) (ws as FloorSocket).wire = socket;
      wss.emit('connection', ws, req);
    });
  });
  const send: (sockets: Iterable<WebSocket>, text: string) => void = floor
    ? (sockets, text) => {
        const frame = Buffer.concat(senderFrame(Buffer.from(text), TEXT_FRAME));
        for (const ws of sockets) if (ws.readyState === 1) (ws as FloorSocket).wire.write(frame);
      }
    : (sockets, text) => {
        const frame = Buffer.from(text);
        for (const ws of sockets) ws.send(frame, { binary: false });
      };
  const byUser = new Map<string, Set<WebSocket>>();
  const authed = new Set<WebSocket>();
  const byTopic = new Map<string, Set<WebSocket>>();
  let reauths = 0;

  const verify = async (token: unknown) => {
    if (typeof token !== 'string') throw new Error('no token');
    const { payload } = await jwtVerify(token, SECRET_KEY, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
    if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') throw new Error('claims');
    return { user: payload.sub, expiresAt: payload.exp * 1000 };
  };

  const scheduleWarning = (ws: WebSocket, client: Client) => {
    if (config.reauthWindowMs === undefined) return;
    clearTimeout(client.reauthTimer);
    const delay = Math.max(0, client.expiresAt - config.reauthWindowMs - Date.now());
    client.reauthTimer = setTimeout(() => {
      ws.send(JSON.stringify({ type: 'reauth_required', reason: 'expiring', deadline: client.expiresAt }));
    }, delay);
  };

  wss.on('connection', (ws) => {
    const client: Client = { user: undefined, expiresAt: 0, topics: undefined, authTimer: undefined, reauthTimer: undefined };
    client.authTimer = setTimeout(() => ws.close(4408, 'authentication timed out'), AUTH_TIMEOUT_MS);
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearTimeout(client.authTimer);
      clearTimeout(client.reauthTimer);
      if (client.user === undefined) return;
      authed.delete(ws);
      for (const topic of client.topics ?? []) {
        const subscribers = byTopic.get(topic);
        subscribers?.delete(ws);
        if (subscribers?.size === 0) byTopic.delete(topic);
      }
      const sockets = byUser.get(client.user);
      sockets?.delete(ws);
      if (sockets?.size === 0) byUser.delete(client.user);
    });
    ws.on('message', (raw: RawData) => {
      let msg: { type?: unknown; token?: unknown; data?: unknown; id?: unknown; method?: unknown; topic?: unknown };
      try {
        msg = JSON.parse(raw.toString()) as typeof msg;
      } catch {
        return ws.close(4400, 'bad json');
      }
      if (msg.type === 'auth') {
        verify(msg.token).then(
          ({ user, expiresAt }) => {
            if (client.user !== undefined && client.user !== user) return ws.close(4403, 'different user');
            if (client.user === undefined) {
              client.user = user;
              clearTimeout(client.authTimer);
              client.authTimer = undefined;
              let sockets = byUser.get(user);
              if (!sockets) byUser.set(user, (sockets = new Set()));
              sockets.add(ws);
              authed.add(ws);
            } else {
              reauths++;
            }
            client.expiresAt = expiresAt;
            scheduleWarning(ws, client);
            ws.send(JSON.stringify({ type: 'auth_ok', user, expiresAt }));
          },
          () => ws.close(4401, 'invalid token'),
        );
        return;
      }
      if (client.user === undefined) return ws.close(4401, 'authenticate first');
      if (msg.type === 'message') ws.send(JSON.stringify({ type: 'message', data: msg.data }));
      // The rpc floor: the same request and answer frames as authsocket's, the same echo as its handler.
      else if (msg.type === 'subscribe' && typeof msg.topic === 'string') {
        let subscribers = byTopic.get(msg.topic);
        if (!subscribers) byTopic.set(msg.topic, (subscribers = new Set()));
        subscribers.add(ws);
        (client.topics ??= new Set()).add(msg.topic);
        ws.send(JSON.stringify({ type: 'ack', id: msg.id }));
      } else if (msg.type === 'rpc') ws.send(JSON.stringify({ type: 'result', id: msg.id, data: { echo: msg.data } }));
    });
  });

  return {
    http: server,
    broadcast(data: AppData) {
      send(authed, JSON.stringify({ type: 'message', data }));
    },
    push(user: string, data: AppData) {
      const sockets = byUser.get(user);
      if (!sockets) return 0;
      send(sockets, JSON.stringify({ type: 'message', data }));
      return sockets.size;
    },
    publish(topic: string, data: AppData) {
      const subscribers = byTopic.get(topic);
      if (!subscribers) return 0;
      send(subscribers, JSON.stringify({ type: 'message', data, topic }));
      return subscribers.size;
    },
    connections: () => authed.size,
    reauths: () => reauths,
  };
}
