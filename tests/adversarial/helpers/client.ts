import type { IncomingHttpHeaders } from 'node:http';
import { type ServerMessage, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { WebSocket } from 'ws';

let nextAddress = 0;

/**
 * A loopback source address for an attacking client: 127.0.0.2 to 127.0.0.201 in turn. The gateway
 * limits upgrades per remote address (300 per 10 s); spreading attackers over loopback addresses
 * keeps one case's volume from tripping that limit for the next, and leaves 127.0.0.1 to the canary.
 */
export function attackerAddress(): string {
  nextAddress = (nextAddress + 1) % 200;
  return `127.0.0.${nextAddress + 2}`;
}

export interface Refusal {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

export interface OpenOptions {
  readonly protocols?: readonly string[];
  readonly headers?: Record<string, string>;
  /** Source address; default: the next attacker address. */
  readonly localAddress?: string;
}

/** A `ws` client that records every frame and its close; for canaries and well-formed attackers. */
export class Client {
  readonly ws: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('error', () => {});
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as ServerMessage);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#wake();
      }),
    );
  }

  /** Opens a socket; resolves once open, rejects with the HTTP refusal otherwise. */
  static open(url: string, { protocols = [SUBPROTOCOL], headers = {}, localAddress = attackerAddress() }: OpenOptions = {}): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [...protocols], { headers, localAddress });
      const client = new Client(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => reject({ status: res.statusCode ?? 0, body, headers: res.headers } satisfies Refusal));
      });
      ws.once('error', (error) => reject(error));
    });
  }

  /** Opens with `authsocket.v1, ticket.<ticket>`. */
  static withTicket(url: string, ticket: string, options: OpenOptions = {}): Promise<Client> {
    return Client.open(url, { ...options, protocols: [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`] });
  }

  /** Opens, sends `auth {token}` and waits for `auth_ok`. */
  static async authenticated(url: string, token: string, options: OpenOptions = {}): Promise<Client> {
    const client = await Client.open(url, options);
    client.send({ type: 'auth', token });
    await client.next((frame) => frame.type === 'auth_ok');
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame matching `predicate`, waiting up to `ms`; rejects if the socket closes first. */
  next(predicate: (frame: ServerMessage) => boolean, ms = 5_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (this.ws.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed before the expected frame; got ${JSON.stringify(this.frames).slice(0, 500)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.frames).slice(0, 500)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Round-trips a ping, so everything the server sent before it has arrived. */
  async settle(): Promise<void> {
    const id = `settle-${Math.random().toString(36).slice(2, 10)}`;
    this.send({ type: 'ping', id });
    await this.next((frame) => frame.type === 'pong' && frame.id === id);
  }

  /** The close, or `'still open'` after `ms`: lets a wrongly accepted attack fail fast. */
  closedWithin(ms = 3_000): Promise<{ code: number; reason: string } | 'still open'> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), ms)));
    return Promise.race([this.closed, open]).finally(() => clearTimeout(timer));
  }

  messages(): unknown[] {
    return this.frames.filter((frame) => frame.type === 'message').map((frame) => (frame as { data: unknown }).data);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.ws.close();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/** Expects the upgrade to be refused and returns the refusal. */
export async function refusal(opening: Promise<Client>): Promise<Refusal> {
  let client: Client;
  try {
    client = await opening;
  } catch (error) {
    if (error instanceof Error) throw error;
    return error as Refusal;
  }
  client.close();
  throw new Error('expected the upgrade to be refused, but it opened');
}
