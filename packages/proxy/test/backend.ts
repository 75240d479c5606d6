import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@authsocket/server';

/** One request as the backend received it: the raw body, as a verifier must read it. */
export interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly raw: string;
  readonly body: Record<string, unknown>;
}

/** What the backend does with a request: answer, or misbehave on its response object. */
export type Behaviour = (request: Received, response: http.ServerResponse) => void | Promise<void>;

/** Answers `status` with `body` as JSON. */
export const json =
  (body: unknown, status = 200): Behaviour =>
  (_request, response) => {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };

/** Never answers (until the client gives up or the server closes). */
export const hang: Behaviour = () => undefined;

/**
 * A real HTTP backend on 127.0.0.1:0. `behave` sets what it does per path; every request is
 * recorded, and a request waiting on `hang` is released by `close()`.
 */
export class Backend {
  readonly requests: Received[] = [];
  readonly #server: http.Server;
  readonly #routes = new Map<string, Behaviour>();
  #fallback: Behaviour = json({});
  #waiters: Array<() => void> = [];
  /** Sockets the server has accepted, to see whether the client kept its connection alive. */
  connections = 0;

  private constructor() {
    this.#server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          // recorded as {}: the test asserting on it fails
        }
        const received = { path: request.url ?? '/', headers: request.headers, raw, body };
        this.requests.push(received);
        for (const wake of this.#waiters.splice(0)) wake();
        const behaviour = this.#routes.get(received.path) ?? this.#fallback;
        void Promise.resolve(behaviour(received, response)).catch(() => response.destroy());
      });
    });
    this.#server.on('connection', () => {
      this.connections += 1;
    });
  }

  static async start(fallback?: Behaviour): Promise<Backend> {
    const backend = new Backend();
    if (fallback) backend.#fallback = fallback;
    await new Promise<void>((resolve) => backend.#server.listen(0, '127.0.0.1', resolve));
    return backend;
  }

  url(path = '/'): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`;
  }

  /** Sets the behaviour for `path` (every other path: the fallback). */
  on(path: string, behaviour: Behaviour): this {
    this.#routes.set(path, behaviour);
    return this;
  }

  otherwise(behaviour: Behaviour): this {
    this.#fallback = behaviour;
    return this;
  }

  /** The requests to `path`, bodies parsed. */
  to(path: string): Received[] {
    return this.requests.filter((request) => request.path === path);
  }

  /** Waits until `count` requests have arrived at `path` (bounded by the test timeout). */
  async received(path: string, count = 1, timeoutMs = 5_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.to(path).length < count) {
      if (Date.now() > deadline) throw new Error(`${this.to(path).length} of ${count} requests to ${path} after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.to(path);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A URL nothing listens on: a port that was free a moment ago (connection refused). */
export async function deadUrl(path = '/'): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path}`;
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps every line, to assert on levels and on what never appears. */
export class CapturingLogger implements Logger {
  readonly lines: LogLine[] = [];

  debug(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'debug', fields, message });
  }

  info(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'info', fields, message });
  }

  warn(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'warn', fields, message });
  }

  error(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'error', fields, message });
  }

  at(level: LogLine['level']): LogLine[] {
    return this.lines.filter((line) => line.level === level);
  }

  /** Everything logged, as one string: fields serialised as pino would. */
  text(): string {
    return this.lines.map((line) => JSON.stringify({ ...line.fields, msg: line.message })).join('\n');
  }
}

/** A behaviour that holds every request until `open()`, then answers with `then`. */
export class Gate {
  #open = false;
  #waiting: Array<() => void> = [];

  behaviour(then: Behaviour): Behaviour {
    return async (request, response) => {
      if (!this.#open) await new Promise<void>((resolve) => this.#waiting.push(resolve));
      await then(request, response);
    };
  }

  open(): void {
    this.#open = true;
    for (const release of this.#waiting.splice(0)) release();
  }
}
