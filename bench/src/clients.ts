import http from 'node:http';
import { WebSocket } from 'ws';
import { type AppData, type Dialect, HOST, nowUs } from './common.js';

/**
 * One load-generator connection, a raw `ws` client for every target so the generator costs the
 * same whatever it drives: authsocket's and the hand-written server's JSON frames, or Engine.IO v4
 * / Socket.IO v5 packets written by hand (`0` open, `40{auth}` connect, `42[event, data]`, `2`/`3`
 * ping/pong) instead of socket.io-client.
 */
export class BenchClient {
  readonly ws: WebSocket;
  readonly dialect: Dialect;
  readonly user: number;
  /** Application messages (push, broadcast, publish, echo), with the time they arrived. */
  onData: ((data: AppData, at: number, frame: ServerFrame) => void) | undefined;
  /** `reauth_required` with its reason. */
  onReauth: ((reason: string) => void) | undefined;
  /** `auth_ok` after the first one (an in-band reauth answered). */
  onReauthOk: (() => void) | undefined;
  /** `ack` frames (authsocket subscribe, message with an id), with their arrival time. */
  onAck: ((id: string, at: number, frame: ServerFrame) => void) | undefined;
  /** The answer to `sendRpc` (`result` frame; Socket.IO: the acknowledgement), with its arrival time. */
  onResult: ((id: string, data: unknown, at: number) => void) | undefined;
  /** An `error` frame (with the request's `id` when it answers one). */
  onError: ((id: string | undefined, code: string, at: number) => void) | undefined;
  closedWith: number | undefined;
  /** Resolves with the time `auth_ok` (Socket.IO: the namespace CONNECT) arrived. */
  readonly ready: Promise<number>;
  #authed = false;
  /** `,"token":"…"}` for the last per-message token sent, and that token. */
  #tokenField: string | undefined;
  #tokenFor: string | undefined;
  #token: string;
  #resolve: ((at: number) => void) | undefined;
  #reject: ((error: Error) => void) | undefined;

  constructor(
    dialect: Dialect,
    port: number,
    user: number,
    token: string,
    options: { ticket?: string; localAddress?: string } = {},
  ) {
    this.dialect = dialect;
    this.user = user;
    this.#token = token;
    this.ready = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Awaited by every caller; this only keeps a late failure from being reported as unhandled.
    this.ready.catch(() => undefined);
    const url =
      dialect === 'socketio'
        ? `ws://${HOST}:${port}/socket.io/?EIO=4&transport=websocket`
        : `ws://${HOST}:${port}/`;
    const protocols =
      dialect === 'authsocket'
        ? options.ticket === undefined
          ? ['authsocket.v1']
          : ['authsocket.v1', `ticket.${options.ticket}`]
        : [];
    this.ws = new WebSocket(url, protocols, {
      perMessageDeflate: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    this.ws.on('open', () => {
      // First-message auth; a ticket socket gets `auth_ok` unasked; Socket.IO waits for `0{...}`.
      if (dialect !== 'socketio' && options.ticket === undefined) this.sendAuth(token);
    });
    this.ws.on('message', (raw: Buffer) => this.#onMessage(raw.toString(), nowUs()));
    this.ws.on('error', (error) => this.#fail(error));
    this.ws.on('close', (code) => {
      this.closedWith = code;
      this.#fail(new Error(`closed ${code}`));
    });
  }

  sendAuth(token: string): void {
    this.#token = token;
    if (this.dialect === 'socketio') this.ws.send(`42${JSON.stringify(['auth', token])}`);
    else this.ws.send(JSON.stringify({ type: 'auth', token }));
  }

  /**
   * An application message (echo). `token` rides along in per-message-auth mode, its JSON made once
   * per client: re-escaping a JWT on every frame is the generator's cost, not the server's, and
   * made per-message-auth echo measure the generator.
   */
  sendData(data: AppData, token?: string): void {
    if (this.dialect === 'socketio') return this.ws.send(`42${JSON.stringify(['message', data])}`);
    if (token === undefined) return this.ws.send(`{"type":"message","data":${JSON.stringify(data)}}`);
    if (this.#tokenField === undefined || this.#tokenFor !== token) {
      this.#tokenFor = token;
      this.#tokenField = `,"token":${JSON.stringify(token)}}`;
    }
    this.ws.send(`{"type":"message","data":${JSON.stringify(data)}${this.#tokenField}`);
  }

  /** An authsocket `message` frame with an `id`, so the gateway acks it once its handler resolved (queue path: committed). */
  sendMessage(id: number, data: unknown): void {
    this.ws.send(JSON.stringify({ type: 'message', id: String(id), data }));
  }

  /**
   * A request answered by one reply: authsocket's (and the hand-written server's) `rpc` frame, or a
   * Socket.IO `rpc` event with an acknowledgement, `42<id>["rpc",data]` (`method` is not sent: the
   * event name is the method). `id` is a non-negative integer.
   */
  sendRpc(id: number, method: string, data: unknown): void {
    if (this.dialect === 'socketio') this.ws.send(`42${id}${JSON.stringify(['rpc', data])}`);
    else this.ws.send(JSON.stringify({ type: 'rpc', id: String(id), method, data }));
  }

  /** authsocket's (and the hand-written server's) `subscribe` frame; Socket.IO: a `subscribe` event answered by `ack`. */
  subscribe(topic: string, id: string): void {
    if (this.dialect === 'socketio') this.ws.send(`42${JSON.stringify(['subscribe', { topic, id }])}`);
    else this.ws.send(JSON.stringify({ type: 'subscribe', topic, id }));
  }

  close(): void {
    this.ws.terminate();
  }

  #fail(error: Error): void {
    const reject = this.#reject;
    this.#resolve = undefined;
    this.#reject = undefined;
    reject?.(error);
  }

  #authOk(at: number): void {
    if (this.#authed) return this.onReauthOk?.();
    this.#authed = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    resolve?.(at);
  }

  #onMessage(text: string, at: number): void {
    if (this.dialect === 'socketio') return this.#onEngineIo(text, at);
    const frame = JSON.parse(text) as ServerFrame;
    switch (frame.type) {
      case 'message':
        return this.onData?.(frame.data as AppData, at, frame);
      case 'auth_ok':
        return this.#authOk(at);
      case 'reauth_required':
        return this.onReauth?.(frame.reason ?? '');
      case 'ack':
        return this.onAck?.(frame.id ?? '', at, frame);
      case 'result':
        return this.onResult?.(frame.id ?? '', frame.data, at);
      case 'error':
        return this.onError?.(frame.id, frame.code ?? '', at);
      default:
        return;
    }
  }

  #onEngineIo(text: string, at: number): void {
    switch (text.charCodeAt(0)) {
      case 0x30: // '0' open: connect to the default namespace with the token as auth payload
        return this.ws.send(`40${JSON.stringify({ token: this.#token })}`);
      case 0x32: // '2' ping
        return this.ws.send('3');
      case 0x34: {
        // '4' message: a Socket.IO packet
        const packet = text.charCodeAt(1);
        if (packet === 0x30) return this.#authOk(at); // '40{sid}' CONNECT
        if (packet === 0x34) return this.#fail(new Error('connect_error')); // '44{message}'
        if (packet === 0x33) {
          // '43<id>[args]' ACK: the answer to an event sent with an id
          const open = text.indexOf('[', 2);
          const [data] = JSON.parse(text.slice(open)) as [unknown];
          return this.onResult?.(text.slice(2, open), data, at);
        }
        if (packet !== 0x32) return; // not an EVENT
        const [event, data] = JSON.parse(text.slice(2)) as [string, unknown];
        if (event === 'message') return this.onData?.(data as AppData, at, { type: 'message', data });
        if (event === 'reauth_required') return this.onReauth?.((data as { reason: string }).reason);
        if (event === 'auth_ok') return this.onReauthOk?.();
        if (event === 'ack') return this.onAck?.((data as { id: string }).id, at, { type: 'ack', id: (data as { id: string }).id });
        return;
      }
      default:
        return;
    }
  }
}

/** The fields of server frames the load generator reads. */
export interface ServerFrame {
  type: string;
  data?: unknown;
  reason?: string;
  id?: string;
  code?: string;
  stream?: string;
  offset?: number;
}

/** `POST /auth/ticket` with the JWT; resolves to the ticket. */
export function fetchTicket(agent: http.Agent, port: number, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method: 'POST', path: '/auth/ticket', agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`ticket: HTTP ${res.statusCode}`));
          resolve((JSON.parse(Buffer.concat(chunks).toString()) as { ticket: string }).ticket);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const controlAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** A command to the server process's control channel. */
export function control<T>(port: number, name: string, body: Record<string, number> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(
      {
        host: HOST,
        port,
        method: 'POST',
        path: `/${name}`,
        agent: controlAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) return reject(new Error(`control ${name}: ${text}`));
          resolve(JSON.parse(text) as T);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
