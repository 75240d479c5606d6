import { EventEmitter } from 'node:events';
import {
  type ConnectContext,
  type ConnectResult,
  type DisconnectEvent,
  HandlerError,
  type MessageHandler,
  type PublishContext,
  type RpcContext,
  type SubscribeContext,
  type Verdict,
} from '@authsocket/server';
import { Agent } from 'undici';
import { connectAnswer, rpcAnswer, topicAnswer } from './answers.js';
import { Endpoint, EndpointFailure, type RequestReport } from './endpoint.js';
import { Envelopes } from './envelope.js';
import { type HttpProxyOptions, PROXY_EVENTS, type ProxyEvent, type ResolvedProxyOptions, resolveProxyOptions } from './options.js';

/** What an `HttpProxy` reports, for metrics: one `request` per HTTP attempt. Listeners must not throw. */
export interface HttpProxyEvents {
  request: [RequestReport];
}

/** What a client sees for every backend fault: `error {code: 'unavailable', temporary: true}`, or a `1013` close on connect. */
function unavailable(cause: unknown): HandlerError {
  return new HandlerError('unavailable', 'backend unavailable', { temporary: true, cause });
}

/** A longest-prefix route, else the event's own endpoint. */
function route(prefixes: readonly (readonly [string, Endpoint])[], fallback: Endpoint | undefined, topic: string): Endpoint | undefined {
  for (const [prefix, endpoint] of prefixes) if (topic.startsWith(prefix)) return endpoint;
  return fallback;
}

/**
 * The gateway's `MessageHandler` as signed JSON POSTs to a backend. Only the events given a URL are
 * handler methods: without `rpc`, `onRpc` is undefined and the core answers `not_found`; without
 * `subscribe` (and `subscribeByPrefix`), `authorize` decides subscriptions.
 */
export class HttpProxy extends EventEmitter<HttpProxyEvents> implements MessageHandler {
  declare readonly onConnect?: (context: ConnectContext) => undefined | Promise<ConnectResult>;
  declare readonly onSubscribe?: (context: SubscribeContext) => Verdict | Promise<Verdict>;
  declare readonly onPublish?: (context: PublishContext) => Verdict | Promise<Verdict>;
  declare readonly onRpc?: (context: RpcContext) => Promise<unknown>;
  declare readonly onDisconnect?: (event: DisconnectEvent) => void;

  readonly #options: ResolvedProxyOptions;
  readonly #agent = new Agent();
  readonly #envelopes: Envelopes;
  readonly #endpoints: Partial<Record<ProxyEvent, Endpoint>> = {};
  readonly #subscribeByPrefix: (readonly [string, Endpoint])[];
  readonly #publishByPrefix: (readonly [string, Endpoint])[];
  readonly #all: Endpoint[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedProxyOptions) {
    super();
    this.#options = options;
    this.#envelopes = new Envelopes(options.nodeId, options.forwardClaims, options.clock);
    const deps = {
      dispatcher: this.#agent,
      secret: options.secret,
      clock: options.clock,
      maxResponseBytes: options.maxResponseBytes,
      breaker: options.breaker,
      logger: options.logger,
      report: (report: RequestReport) => this.#report(report),
    };
    const make = (spec: (typeof options.subscribeByPrefix)[number][1]): Endpoint => {
      const endpoint = new Endpoint(spec, deps);
      this.#all.push(endpoint);
      return endpoint;
    };
    for (const event of PROXY_EVENTS) {
      const spec = options.endpoints[event];
      if (spec !== undefined) this.#endpoints[event] = make(spec);
    }
    this.#subscribeByPrefix = options.subscribeByPrefix.map(([prefix, spec]) => [prefix, make(spec)] as const);
    this.#publishByPrefix = options.publishByPrefix.map(([prefix, spec]) => [prefix, make(spec)] as const);
    const { connect, refresh, subscribe, publish, rpc, disconnect } = this.#endpoints;
    // Own properties, set only for the events configured: the core checks `handler.onRpc === undefined`.
    const methods: Partial<MessageHandler> = {};
    if (connect !== undefined || refresh !== undefined) methods.onConnect = (context) => this.#connect(context);
    if (subscribe !== undefined || this.#subscribeByPrefix.length > 0) methods.onSubscribe = (context) => this.#subscribe(context);
    if (publish !== undefined || this.#publishByPrefix.length > 0) methods.onPublish = (context) => this.#publish(context);
    if (rpc !== undefined) methods.onRpc = (context) => this.#rpc(rpc, context);
    if (disconnect !== undefined) methods.onDisconnect = (event) => this.#disconnect(disconnect, event);
    Object.assign(this, methods);
  }

  /** Requests in flight for `event`, over all its endpoints (the per-prefix ones included). */
  inFlight(event: ProxyEvent): number {
    let count = 0;
    for (const endpoint of this.#all) if (endpoint.spec.event === event) count += endpoint.inFlight;
    return count;
  }

  /** Stops sending (later events fail as `unavailable`), lets requests in flight finish, closes the connections. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= Promise.allSettled([...this.#pending]).then(() => this.#agent.close());
    return this.#closing;
  }

  #connect(context: ConnectContext): undefined | Promise<ConnectResult> {
    // No refresh URL: a reauth's verified token is enough. No connect URL: a first bind is.
    const endpoint = context.refresh ? this.#endpoints.refresh : this.#endpoints.connect;
    if (endpoint === undefined) return undefined;
    return this.#call(endpoint, this.#envelopes.connect(context), connectAnswer, context.refresh).then(decided);
  }

  #subscribe(context: SubscribeContext): Verdict | Promise<Verdict> {
    const endpoint = route(this.#subscribeByPrefix, this.#endpoints.subscribe, context.topic);
    if (endpoint === undefined) return this.#unrouted('subscribe', context);
    return this.#call(endpoint, this.#envelopes.subscribe(context), topicAnswer).then(decided);
  }

  #publish(context: PublishContext): Verdict | Promise<Verdict> {
    const endpoint = route(this.#publishByPrefix, this.#endpoints.publish, context.topic);
    if (endpoint === undefined) return this.#unrouted('publish', context);
    return this.#call(endpoint, this.#envelopes.publish(context), topicAnswer).then(decided);
  }

  async #rpc(endpoint: Endpoint, context: RpcContext): Promise<unknown> {
    return decided(await this.#call(endpoint, this.#envelopes.rpc(context), rpcAnswer)).result;
  }

  #disconnect(endpoint: Endpoint, event: DisconnectEvent): void {
    const body = this.#envelopes.disconnect(event);
    // Failures are logged by the endpoint (at debug: an outage would flood the log otherwise).
    if (body !== undefined) this.#call(endpoint, body, undefined, true, true).catch(() => undefined);
  }

  /** A topic no prefix routes and no catch-all URL covers: refused, as a backend that was never asked. */
  #unrouted(action: 'subscribe' | 'publish', context: SubscribeContext | PublishContext): false {
    this.#options.logger.debug({ id: context.connection.id, action, topic: context.topic.slice(0, 64) }, 'no backend for this topic: refused');
    return false;
  }

  /**
   * One request, and for `retry` one more after `retryDelayMs` if the first failed in a way that
   * may pass (not a backend bug, not an open circuit). Every failure becomes `unavailable`.
   */
  #call<T>(endpoint: Endpoint, body: string, parse: ((answer: Record<string, unknown>) => T) | undefined, retry = false, quiet = false): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable(new Error('proxy closed')));
    const attempt = () => endpoint.post(body, parse, quiet) as Promise<T>;
    const task = attempt().catch(async (error: unknown) => {
      if (!(error instanceof EndpointFailure)) throw error;
      if (!retry || !error.transient || this.#closed) throw unavailable(error);
      await new Promise((resolve) => setTimeout(resolve, this.#options.retryDelayMs).unref());
      if (this.#closed) throw unavailable(error);
      return attempt().catch((again: unknown) => {
        throw again instanceof EndpointFailure ? unavailable(again) : again;
      });
    });
    this.#pending.add(task);
    const untrack = () => this.#pending.delete(task);
    task.then(untrack, untrack);
    return task;
  }

  #report(report: RequestReport): void {
    try {
      this.emit('request', report);
    } catch (error) {
      this.#options.logger.warn({ err: String(error) }, "a 'request' listener threw");
    }
  }
}

/** A parsed answer, or the refusal it carries thrown as the port expects. */
function decided<T>(value: T | HandlerError): T {
  if (value instanceof HandlerError) throw value;
  return value;
}

/** Validates `options` (throwing `ConfigError` naming the option at fault) and builds the proxy. */
export function createHttpProxy(options: HttpProxyOptions): HttpProxy {
  return new HttpProxy(resolveProxyOptions(options));
}
