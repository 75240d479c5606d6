import { isPlainObject } from '@authsocket/protocol';
import type { Clock, Logger } from '@authsocket/server';
import type { Dispatcher } from 'undici';
import { Breaker } from './breaker.js';
import type { ProxyEvent, ResolvedEndpoint } from './options.js';
import { SIGNATURE_HEADER, signBody } from './signature.js';

/**
 * How one request to a backend ended, for metrics:
 * - `ok`: a 2xx JSON answer of the expected shape (an answer that refuses is `ok` too);
 * - `timeout`: no whole answer within the endpoint's `timeoutMs`;
 * - `refused`: no connection (refused, unreachable, unknown host);
 * - `unavailable`: an HTTP 5xx, or the connection broke during the exchange;
 * - `invalid`: a backend bug: any other status, a body that is not a JSON object, too large, or of the wrong shape;
 * - `circuit_open`: not sent, the endpoint's breaker is open;
 * - `overloaded`: not sent, `maxConcurrency` requests are already in flight.
 */
export type Outcome = 'ok' | 'timeout' | 'refused' | 'unavailable' | 'invalid' | 'circuit_open' | 'overloaded';

/** What the proxy's `request` event reports: one per HTTP attempt (a retry is a second one). */
export interface RequestReport {
  readonly event: ProxyEvent;
  /** The option that configured the endpoint: `subscribe`, `subscribeByPrefix['chat:']`. */
  readonly endpoint: string;
  readonly outcome: Outcome;
  readonly durationMs: number;
  /** The HTTP status, when there was one. */
  readonly status?: number;
}

/** Thrown by an answer parser: the backend answered 2xx JSON of the wrong shape. */
export class InvalidAnswer extends Error {}

/** Why a request did not produce a usable answer. `detail` is for logs: never a body, a header or a token. */
export class EndpointFailure extends Error {
  readonly outcome: Exclude<Outcome, 'ok'>;
  readonly status: number | undefined;

  constructor(outcome: Exclude<Outcome, 'ok'>, detail: string, status?: number) {
    super(detail);
    this.outcome = outcome;
    this.status = status;
  }

  /** Whether the same request may succeed a moment later: what a retry is for. */
  get transient(): boolean {
    return this.outcome !== 'invalid' && this.outcome !== 'circuit_open';
  }
}

/** What every endpoint of one proxy shares. */
export interface EndpointDeps {
  readonly dispatcher: Dispatcher;
  readonly secret: string;
  readonly clock: Clock;
  readonly maxResponseBytes: number;
  readonly breaker: { readonly failures: number; readonly cooldownMs: number };
  readonly logger: Logger;
  readonly report: (report: RequestReport) => void;
}

/** Errors that mean no connection was made at all. */
const NO_CONNECTION = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  return cause === undefined ? undefined : errorCode(cause);
}

/**
 * One backend URL: a signed JSON POST through the proxy's keep-alive agent (one connection pool per
 * origin), bounded in time (an `AbortSignal` covering headers and body), in concurrency (past
 * `maxConcurrency` in flight it fails at once) and in response size, behind its own breaker.
 */
export class Endpoint {
  readonly spec: ResolvedEndpoint;
  readonly #deps: EndpointDeps;
  readonly #breaker: Breaker;
  readonly #path: string;
  /** For logs: the URL without its query, which may carry an API key. */
  readonly #where: string;
  #inFlight = 0;

  constructor(spec: ResolvedEndpoint, deps: EndpointDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#breaker = new Breaker(deps.breaker.failures, deps.breaker.cooldownMs);
    this.#path = `${spec.url.pathname}${spec.url.search}`;
    this.#where = `${spec.url.origin}${spec.url.pathname}`;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * POSTs `body` and returns `parse` of the JSON object answered; throws `EndpointFailure`. Without
   * `parse` any 2xx will do and its body is not read (a notification: `disconnect`).
   * `quiet`: log transient failures at debug (best-effort events, which a backend outage would
   * otherwise turn into a flood of warnings); a backend bug is logged at error regardless.
   */
  async post<T>(body: string, parse?: (answer: Record<string, unknown>) => T, quiet = false): Promise<T | undefined> {
    const started = performance.now();
    if (this.#inFlight >= this.spec.maxConcurrency) {
      throw this.#failed(new EndpointFailure('overloaded', `${this.spec.maxConcurrency} requests in flight`), started, quiet);
    }
    if (!this.#breaker.allow(this.#deps.clock.now())) {
      throw this.#failed(new EndpointFailure('circuit_open', 'circuit open after consecutive failures'), started, quiet);
    }
    this.#inFlight += 1;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.spec.timeoutMs);
    let status: number | undefined;
    try {
      const answer = await this.#exchange(body, controller.signal, parse !== undefined, (code) => (status = code));
      let value: T | undefined;
      try {
        value = parse?.(answer);
      } catch (error) {
        if (error instanceof InvalidAnswer) throw new EndpointFailure('invalid', `invalid answer: ${error.message}`, status);
        throw error;
      }
      this.#breaker.succeeded();
      this.#emit({ outcome: 'ok', started, status });
      return value;
    } catch (error) {
      const failure = this.#classify(error, controller.signal.aborted, status);
      if (this.#breaker.failed(this.#deps.clock.now())) {
        this.#deps.logger.warn(
          { event: this.spec.event, endpoint: this.spec.name, url: this.#where, cooldownMs: this.#deps.breaker.cooldownMs },
          'backend endpoint failing: circuit opened',
        );
      }
      throw this.#failed(failure, started, quiet);
    } finally {
      clearTimeout(timer);
      this.#inFlight -= 1;
    }
  }

  async #exchange(
    body: string,
    signal: AbortSignal,
    read: boolean,
    statusOf: (status: number) => void,
  ): Promise<Record<string, unknown>> {
    const { dispatcher, secret, clock, maxResponseBytes } = this.#deps;
    const response = await dispatcher.request({
      origin: this.spec.url.origin,
      path: this.#path,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        [SIGNATURE_HEADER]: signBody(secret, body, clock.now()),
      },
      body,
      signal,
    });
    const { statusCode, headers, body: stream } = response;
    // Destroying a body undici is still reading emits 'error' (UND_ERR_ABORTED): without a listener
    // that is an uncaught exception, which would take the gateway down. Failures are handled below.
    stream.on('error', () => undefined);
    statusOf(statusCode);
    // A body not read is still drained (bounded, and by the timeout), so the connection stays in the pool.
    const drain = () => stream.dump({ limit: maxResponseBytes }).catch(() => undefined);
    if (statusCode < 200 || statusCode > 299) {
      await drain();
      if (statusCode >= 500) throw new EndpointFailure('unavailable', `HTTP ${statusCode}`, statusCode);
      throw new EndpointFailure('invalid', `HTTP ${statusCode}`, statusCode);
    }
    if (!read) {
      await drain();
      return {};
    }
    const declared = Number(headers['content-length']);
    if (declared > maxResponseBytes) {
      stream.destroy();
      throw new EndpointFailure('invalid', `response of ${declared} bytes, over maxResponseBytes ${maxResponseBytes}`, statusCode);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxResponseBytes) {
        // Leaving the loop destroys the stream: nothing more is read from a runaway backend.
        throw new EndpointFailure('invalid', `response over maxResponseBytes ${maxResponseBytes}`, statusCode);
      }
      chunks.push(chunk);
    }
    let answer: unknown;
    try {
      answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new EndpointFailure('invalid', 'response body is not JSON', statusCode);
    }
    if (!isPlainObject(answer)) throw new EndpointFailure('invalid', 'response body is not a JSON object', statusCode);
    return answer;
  }

  #classify(error: unknown, aborted: boolean, status: number | undefined): EndpointFailure {
    if (error instanceof EndpointFailure) return error;
    if (aborted) return new EndpointFailure('timeout', `no answer within ${this.spec.timeoutMs} ms`, status);
    const code = errorCode(error);
    if (code !== undefined && NO_CONNECTION.has(code)) return new EndpointFailure('refused', `cannot connect: ${code}`);
    return new EndpointFailure('unavailable', `request failed: ${code ?? (error instanceof Error ? error.name : 'error')}`, status);
  }

  #failed(failure: EndpointFailure, started: number, quiet: boolean): EndpointFailure {
    this.#emit({ outcome: failure.outcome, started, status: failure.status });
    const fields = {
      event: this.spec.event,
      endpoint: this.spec.name,
      url: this.#where,
      outcome: failure.outcome,
      ...(failure.status === undefined ? {} : { status: failure.status }),
      err: failure.message,
    };
    const { logger } = this.#deps;
    if (failure.outcome === 'invalid') logger.error(fields, 'backend answered an invalid response (a backend bug)');
    else if (quiet || failure.outcome === 'circuit_open') logger.debug(fields, 'backend request failed');
    else logger.warn(fields, 'backend request failed');
    return failure;
  }

  #emit({ outcome, started, status }: { outcome: Outcome; started: number; status: number | undefined }): void {
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    this.#deps.report({
      event: this.spec.event,
      endpoint: this.spec.name,
      outcome,
      durationMs,
      ...(status === undefined ? {} : { status }),
    });
  }
}
