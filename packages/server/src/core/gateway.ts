import { EventEmitter } from 'node:events';
import { CloseCode, topicStream, userStream } from '@authsocket/protocol';
import type { PublishOptions } from '../broker.js';
import { ConfigError } from '../errors.js';
import type { PresenceMember } from '../presence-store.js';
import type { ConnectionRecord } from '../connection-store.js';
import { DeadlineQueue } from '../deadlines.js';
import type { GatewayEvents } from '../events.js';
import { IdentityVerifier } from '../identity.js';
import { type GatewayOptions, type ResolvedOptions, resolveOptions } from '../options.js';
import { Tickets } from '../tickets.js';
import { createTokenVerifier, DEFAULT_CLOCK_TOLERANCE_SEC, type VerifiedToken } from '../token-verifier.js';
import { createCachedVerifier } from '../verification-cache.js';
import { Admission, type Admitted } from './admission.js';
import { Auth } from './auth.js';
import { Commands } from './commands.js';
import type { Core } from './context.js';
import { Delivery } from './delivery.js';
import { Expiry } from './expiry.js';
import { HttpRoutes } from './http.js';
import { Inbound } from './inbound.js';
import { Listing } from './listing.js';
import type { HttpReply, HttpRequest, MessageHandler, ServerSocket, SocketEvents, Transport, UpgradeRequest } from './ports.js';
import { Presence } from './presence.js';
import { Recovery } from './recovery.js';
import { Registry } from './registry.js';
import { Revocations } from './revocations.js';
import { applicationCloseCode } from './message-context.js';
import { Session } from './session.js';
import { SubscriptionTokens } from './subscription-tokens.js';
import { TopicAccess } from './topic-access.js';
import { connectionId } from './ids.js';

/** How long `close()` waits for peers to answer the 1001 close before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000;

/** The in-process backend path: the application's callbacks from the options. */
function inProcessHandler(options: ResolvedOptions): MessageHandler {
  return options.handler ?? (options.onMessage ? { onMessage: options.onMessage } : {});
}

/**
 * An authenticated WebSocket gateway without a transport: ticket endpoint, upgrade decisions,
 * auth flows, expiry policies, per-user and per-topic delivery. A transport adapter drives it
 * through `transport` (see `@authsocket/server/ws` for Node's `http` + `ws`).
 */
export class GatewayCore extends EventEmitter<GatewayEvents> {
  readonly #options: ResolvedOptions;
  readonly #core: Core;
  readonly #admission: Admission;
  readonly #routes: HttpRoutes;
  readonly #revocations: Revocations;
  #closing = false;
  /** `drain()` was called: readiness says `closing` so balancers send no one new; sockets still serve. */
  #draining = false;
  /** The side of the core a transport adapter drives. */
  readonly transport: Transport;

  constructor(options: GatewayOptions) {
    super();
    const resolved = resolveOptions(options);
    this.#options = resolved;
    const { clock } = resolved;
    const verifier = createTokenVerifier(resolved.jwt, clock, resolved.logger);
    const skewMs = (resolved.jwt.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC) * 1000;
    const identity = new IdentityVerifier(verifier, resolved.revocationStore, () => clock.now(), skewMs, resolved.subscriptionTokenClaim);
    // Filled in below in dependency order; every collaborator reads its siblings through it.
    // Late bound: presence is made below, once the record it reads is filled in.
    const registry = new Registry((session, topic) => core.presence.left(session, topic));
    const core = {
      options: resolved,
      events: this,
      registry,
      listing: new Listing(resolved.connectionStore, registry, resolved.nodeId),
      deadlines: new DeadlineQueue(clock),
      identity,
      perMessage: createCachedVerifier(verifier, { maxEntries: resolved.verificationCacheSize }, clock),
      handler: inProcessHandler(resolved),
      drained: undefined,
    } as Partial<Core> as { -readonly [K in keyof Core]: Core[K] };
    core.delivery = new Delivery(core);
    core.expiry = new Expiry(core);
    core.recovery = new Recovery(core);
    core.access = new TopicAccess(core);
    core.subscriptionTokens = new SubscriptionTokens(core);
    core.presence = new Presence(core);
    core.auth = new Auth(core);
    core.commands = new Commands(core);
    core.inbound = new Inbound(core);
    this.#core = core;
    const tickets = new Tickets(resolved.ticketStore, { ttlMs: resolved.ticketTtlMs, reusable: resolved.ticketReuse });
    this.#admission = new Admission(resolved, identity, tickets, this);
    this.#routes = new HttpRoutes(resolved, this.#admission, () => ({
      closing: this.#closing || this.#draining,
      connections: core.registry.all.size,
      jwks: verifier.keysStatus?.(),
    }));
    this.#revocations = new Revocations(core);
    this.transport = this.#transport();
    resolved.broker
      .start({
        publication: (publication) => core.delivery.deliverLocally(publication),
        control: (message) => {
          if ('revoke' in message) this.#revocations.closeUser(message.revoke);
          else core.registry.byId(message.close)?.close(message.code, message.reason);
        },
        resync: () => this.#revocations.resync(),
      })
      .catch((error: unknown) => resolved.logger.error({ err: String(error) }, 'broker failed to start'));
    core.listing.start(resolved.logger);
    // Off by default: without presence the store is never written, nor its lease started.
    if (resolved.presence !== false) {
      resolved.presenceStore
        .start(resolved.nodeId, () => core.presence.held())
        .catch((error: unknown) => resolved.logger.error({ err: String(error) }, 'presence store failed to start'));
    }
  }

  #transport(): Transport {
    const core = this.#core;
    const isClosing = () => this.#closing;
    return {
      options: this.#options,
      get accepting() {
        return !isClosing();
      },
      admit: (request: UpgradeRequest) => this.#admission.admit(request),
      open: (socket: ServerSocket, request: UpgradeRequest, admitted: Admitted) => this.#open(socket, request, admitted),
      serve: (request: HttpRequest, reply: HttpReply) => this.#routes.serve(request, reply),
      *sockets() {
        for (const session of core.registry.all) yield session.socket;
      },
    };
  }

  #open(socket: ServerSocket, request: UpgradeRequest, admitted: Admitted): SocketEvents {
    const core = this.#core;
    // 122 random bits: a backend may hold it to reply, a guess reaches no one.
    const session = new Session(core, connectionId(), socket, this.#admission.clientAddress(request));
    core.registry.add(session);
    const { identity, method, resume } = admitted;
    if (identity && method && !this.#options.requireAuthMessage) {
      core.inbound.run(session, core.auth.bind(session, identity, method, resume));
    } else {
      session.expect(identity?.user);
      core.expiry.armAuthTimeout(session);
    }
    return session;
  }

  /**
   * Sends `data` to every connection of `user`, on every node, and keeps it in the user's stream
   * history for resume. Resolves once delivered on this node, with how many of this node's
   * connections got it (or hold it for their reauth).
   */
  sendToUser(user: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#core.delivery.publish({ user }, data, userStream(user), options);
  }

  /**
   * Sends `data` to every authenticated, unexpired connection, at most once: not kept in history,
   * so a connection that is down (or on a node whose link is down) at that moment misses it.
   */
  broadcast(data: unknown, options?: PublishOptions): Promise<number> {
    return this.#core.delivery.publish({ everyone: true }, data, undefined, options);
  }

  /** Sends `data` to every subscriber of `topic` and keeps it in the topic's history. */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#core.delivery.publish({ topic }, data, topicStream(topic), options);
  }

  /**
   * Sends `data` to the connection with id `connection`, on whichever node holds it: not kept in
   * history (at most once, like `connection.send`). Resolves with 1 when this node holds and
   * reached it, else 0 (another node may have).
   */
  sendToConnection(connection: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#core.delivery.publish({ connection }, data, undefined, options);
  }

  /**
   * Closes the connection with id `connection` on whichever node holds it, with `code` (1000 or
   * 4000-4999) and `reason`. Resolves with 1 when it was on this node; the other nodes are told
   * (fire and forget).
   */
  async closeConnection(connection: string, code: number, reason: string): Promise<number> {
    applicationCloseCode(code);
    const local = this.#core.registry.byId(connection);
    if (local) {
      local.close(code, reason);
      return 1;
    }
    await this.#options.broker.control({ close: connection, code, reason });
    return 0;
  }

  /** Closes every connection of `user` with 4403 and refuses their outstanding tickets and tokens. */
  async revokeUser(user: string): Promise<number> {
    await this.#options.revocationStore.revoke(user, this.#options.clock.now());
    await this.#options.broker.control({ revoke: user });
    return this.#revocations.closeUser(user);
  }

  /**
   * Verifies a JWT exactly as every entry point does (signature, algorithm, claims, expiry,
   * revocation): for the application's own HTTP routes, e.g. a token refresh endpoint.
   * Throws `TokenError`, `RevokedError` or `StoreUnavailableError`.
   */
  verifyToken(token: string): Promise<VerifiedToken> {
    return this.#core.identity.verify(token);
  }

  /**
   * Who is subscribed to `topic`, on every node: each member's user, connection id and `info`.
   * Throws `ConfigError` when the topic has no presence, `StoreUnavailableError` when the store cannot answer.
   */
  /** Whether `topic` has presence (the `presence` option is on and its `topics` include it). */
  hasPresence(topic: string): boolean {
    return this.#core.presence.has(topic);
  }

  async presence(topic: string): Promise<readonly PresenceMember[]> {
    this.#assertPresence(topic);
    return this.#options.presenceStore.members(topic);
  }

  /** How many members `topic` has, without listing them; throws as `presence` does. */
  async presenceCount(topic: string): Promise<number> {
    this.#assertPresence(topic);
    return this.#options.presenceStore.count(topic);
  }

  #assertPresence(topic: string): void {
    if (!this.hasPresence(topic)) throw new ConfigError('presence', `topic '${topic.slice(0, 64)}' has no presence`);
  }

  /** Counts for health and metrics: connections by state and messages held awaiting reauth. */
  stats(): { connections: number; authenticated: number; held: number; heldMessages: number } {
    const result = { connections: 0, authenticated: 0, held: 0, heldMessages: 0 };
    for (const session of this.#core.registry.all) {
      result.connections++;
      if (session.state === 'authenticated') result.authenticated++;
      if (session.state === 'held') {
        result.held++;
        result.heldMessages += session.heldCount;
      }
    }
    return result;
  }

  /** Open connections of `user`, or of everyone when `user` is omitted. */
  connectionCount(user?: string): number {
    const { registry } = this.#core;
    return user === undefined ? registry.all.size : (registry.ofUser(user)?.size ?? 0);
  }

  /**
   * Every authenticated connection of `user`, on every node, from the connection registry
   * (`connectionStore`); with `connectionStore: false`, this node's only. Throws
   * `StoreUnavailableError` when the store cannot answer.
   */
  async connections(user: string): Promise<readonly ConnectionRecord[]> {
    return this.#core.listing.ofUser(user);
  }

  /** The authenticated connection with id `id`, on whichever node holds it (this node's only without a registry). */
  async connection(id: string): Promise<ConnectionRecord | undefined> {
    return this.#core.listing.get(id);
  }

  /** Authenticated connections per node id, from the registry (this node's only without one). */
  async connectionsByNode(): Promise<Readonly<Record<string, number>>> {
    return this.#core.listing.countsByNode();
  }

  /**
   * The first step of a graceful shutdown: `/healthz` answers 503 `closing` from now on, so load
   * balancers take this node out, while its connections (and late upgrades) are still served. Then
   * `close()`.
   */
  drain(): void {
    this.#draining = true;
  }

  /** Stops accepting, closes every connection with 1001 and releases timers. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#revocations.stop();
    const core = this.#core;
    const { all } = core.registry;
    const drained = new Promise<void>((resolve) => {
      core.drained = resolve;
    });
    for (const session of [...all]) session.close(CloseCode.GoingAway, 'server shutting down');
    const cut = setTimeout(() => {
      for (const session of all) session.socket.terminate();
    }, SHUTDOWN_GRACE_MS);
    if (all.size > 0) await drained;
    clearTimeout(cut);
    core.drained = undefined;
    core.deadlines.clear();
  }
}
