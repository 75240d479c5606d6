import { once } from 'node:events';
import { AuthSocket, type InboundMessage, type WebSocketConstructor } from '@authsocket/client';
import { SUBPROTOCOL, type ServerMessage, type StreamState, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { SECRET } from '../../helpers.js';

export type Message = Extract<ServerMessage, { type: 'message' }>;
export type AuthOk = Extract<ServerMessage, { type: 'auth_ok' }>;
export type Position = { epoch: string; offset: number };

/** An HS256 JWT for `sub`, signed with the nodes' `--jwt-secret`, valid 5 minutes. */
export function signToken(sub: string): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + 300).sign(new TextEncoder().encode(SECRET));
}

export interface SocketOptions {
  /** Source address of the TCP connection (any of 127.0.0.0/8), e.g. for per-address limits. */
  readonly localAddress?: string;
  readonly headers?: Record<string, string>;
}

/** A raw `ws` client speaking `authsocket.v1` (PROTOCOL.md) that records every frame and its close. */
export class ProtocolClient {
  readonly socket: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The close code and reason, once closed. */
  closeFrame: { code: number; reason: string } | undefined;
  /** When the close was seen (ms since the epoch), once closed. */
  closedAt: number | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(url: string, protocols: string[] = [SUBPROTOCOL], options: SocketOptions = {}) {
    this.socket = new WebSocket(url, protocols, options);
    this.socket.on('error', () => {});
    this.socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as ServerMessage);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        this.closedAt = Date.now();
        this.closeFrame = { code, reason: reason.toString() };
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
  }

  /** Opens a socket and authenticates it with a first `auth` frame (and `resume` positions); resolves on `auth_ok`. */
  static async authenticated(url: string, user: string, resume?: Record<string, Position>): Promise<ProtocolClient> {
    const client = new ProtocolClient(url);
    await once(client.socket, 'open');
    client.send({ type: 'auth', token: await signToken(user), ...(resume ? { resume } : {}) });
    await client.next((frame) => frame.type === 'auth_ok');
    return client;
  }

  /** Opens a socket with a ticket subprotocol; resolves on `auth_ok`. */
  static async withTicket(url: string, ticket: string): Promise<ProtocolClient> {
    const client = new ProtocolClient(url, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
    await client.next((frame) => frame.type === 'auth_ok');
    return client;
  }

  private wake(): void {
    for (const wake of this.#waiters) wake();
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  get authOk(): AuthOk | undefined {
    return this.frames.find((frame): frame is AuthOk => frame.type === 'auth_ok');
  }

  /** Message frames received, of `stream` when given. */
  messages(stream?: string): Message[] {
    return this.frames.filter((frame): frame is Message => frame.type === 'message' && (stream === undefined || frame.stream === stream));
  }

  /** The first recorded frame matching `predicate`, waiting up to `ms` for it. */
  next(predicate: (frame: ServerMessage) => boolean, ms = 5_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (this.socket.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed ${JSON.stringify(this.closeFrame)} before the expected frame; last frames ${JSON.stringify(this.frames.slice(-5))}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${ms} ms; last frames ${JSON.stringify(this.frames.slice(-5))}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** `subscribe` with an id; resolves with the `ack` (or rejects on an `error`). */
  async subscribe(topic: string, id = `sub-${Math.random().toString(36).slice(2)}`): Promise<ServerMessage> {
    this.send({ type: 'subscribe', topic, id });
    const answer = await this.next((frame) => (frame.type === 'ack' || frame.type === 'error') && 'id' in frame && frame.id === id);
    if (answer.type !== 'ack') throw new Error(`subscribe ${topic} refused: ${JSON.stringify(answer)}`);
    return answer;
  }

  /** Round-trips a ping, so every frame the node sent before it has arrived. */
  async settle(ms = 5_000): Promise<void> {
    const id = `settle-${Math.random().toString(36).slice(2)}`;
    this.send({ type: 'ping', id });
    await this.next((frame) => frame.type === 'pong' && frame.id === id, ms);
  }

  terminate(): void {
    this.socket.terminate();
  }
}

/** The HTTP status an upgrade got: 101, or the refusal's. */
export function upgradeStatus(url: string, protocols: string[] = [SUBPROTOCOL], options: SocketOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, options);
    ws.on('error', () => resolve(0));
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (request, response) => {
      resolve(response.statusCode ?? 0);
      request.destroy();
    });
  });
}

/** What a reader of one stream saw, in arrival order: messages, and the positions it was told to start from. */
export type StreamEvent =
  | { readonly kind: 'message'; readonly epoch: string | undefined; readonly offset: number }
  | { readonly kind: 'start'; readonly state: StreamState };

export interface StreamReport {
  /** Offsets never received that no `recovered:false` excused. */
  readonly missing: number;
  /** Offsets received more than once. */
  readonly duplicates: number;
  /** Offsets received after a later one. */
  readonly outOfOrder: number;
  /** `recovered:false` notices received. */
  readonly notRecovered: number;
  readonly last: Position | undefined;
}

/**
 * Checks one stream's promise: every position exactly once, in order — or, where positions were
 * skipped, a `recovered:false` start before the jump (which also allows a new epoch). A `start` with
 * `recovered:true` or a plain subscribe ack never excuses a jump.
 */
export function checkStream(events: readonly StreamEvent[]): StreamReport {
  let missing = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let notRecovered = 0;
  let excused = false;
  let last: Position | undefined;
  const seen = new Set<string>();
  for (const event of events) {
    if (event.kind === 'start') {
      if (event.state.recovered === false) {
        notRecovered++;
        excused = true;
      }
      continue;
    }
    const epoch = event.epoch ?? '';
    const key = `${epoch}/${event.offset}`;
    if (seen.has(key)) {
      duplicates++;
      continue;
    }
    seen.add(key);
    if (last === undefined || epoch !== last.epoch) {
      // The first message of a stream, or of a new epoch: it must start at 1 unless excused.
      if (!excused && event.offset !== 1 && last !== undefined) missing += event.offset - 1;
    } else if (event.offset < last.offset) {
      outOfOrder++;
      continue;
    } else if (event.offset > last.offset + 1 && !excused) {
      missing += event.offset - last.offset - 1;
    }
    excused = false;
    last = { epoch, offset: event.offset };
  }
  return { missing, duplicates, outOfOrder, notRecovered, last };
}

/** The stream events of a raw client: its `auth_ok`/`ack` starts for `stream` and its messages on it. */
export function streamEvents(client: ProtocolClient, stream: string): StreamEvent[] {
  const events: StreamEvent[] = [];
  for (const frame of client.frames) {
    if ((frame.type === 'auth_ok' || frame.type === 'ack') && frame.streams?.[stream]) events.push({ kind: 'start', state: frame.streams[stream] });
    if (frame.type === 'message' && frame.stream === stream && frame.offset !== undefined) events.push({ kind: 'message', epoch: frame.epoch, offset: frame.offset });
  }
  return events;
}

/** An `@authsocket/client` over Node's `ws`, recording what it delivers per stream, reconnecting fast. */
export class RecordingClient {
  readonly client: AuthSocket;
  readonly events = new Map<string, StreamEvent[]>();
  readonly closes: number[] = [];
  /** Data of messages without a stream (broadcasts), in arrival order. */
  readonly unstreamed: unknown[] = [];
  authentications = 0;

  constructor(url: string, user: string) {
    this.client = new AuthSocket({
      url,
      getToken: () => signToken(user),
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      minReconnectDelayMs: 20,
      maxReconnectDelayMs: 300,
      maxReconnectAttempts: 200,
      reconnectOnBrowserEvents: false,
    });
    this.client.on('error', () => {});
    this.client.on('authenticated', ({ streams }) => {
      this.authentications++;
      for (const [stream, state] of Object.entries(streams ?? {})) this.record(stream, { kind: 'start', state });
    });
    this.client.on('message', (message: InboundMessage) => {
      if (message.stream !== undefined && message.offset !== undefined) {
        this.record(message.stream, { kind: 'message', epoch: message.epoch, offset: message.offset });
      } else {
        this.unstreamed.push(message.data);
      }
    });
    this.client.on('close', ({ code }) => this.closes.push(code));
  }

  private record(stream: string, event: StreamEvent): void {
    const list = this.events.get(stream) ?? [];
    list.push(event);
    this.events.set(stream, list);
  }

  report(stream: string): StreamReport {
    return checkStream(this.events.get(stream) ?? []);
  }

  /** Offsets delivered on `stream`, in order. */
  offsets(stream: string): number[] {
    return (this.events.get(stream) ?? []).flatMap((event) => (event.kind === 'message' ? [event.offset] : []));
  }
}
