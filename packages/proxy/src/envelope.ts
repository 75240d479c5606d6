import type { Clock, ConnectContext, DisconnectEvent, MessageContext, PublishContext, RpcContext, SubscribeContext } from '@authsocket/server';
import type { ProxyEvent } from './options.js';

/** Who a request is about: the same block in every event's body. */
export interface EnvelopeIdentity {
  /** The token's `sub`. */
  readonly user: string;
  /** Only the claims named in `forwardClaims`. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The connection's id: unguessable, unique across nodes; reply to it with `POST /api/connections/:id/messages`. */
  readonly connection: string;
  /** The gateway node (`nodeId`). */
  readonly node: string;
  /** The token's `exp`, in seconds since the epoch, as in the JWT. */
  readonly exp: number;
  /** When the gateway built this request, ms since the epoch. */
  readonly ts: number;
  /** Per-message-auth mode only: the token the client sent with this frame, for the backend to verify itself. */
  readonly token?: string;
}

interface Base<E extends ProxyEvent> {
  readonly event: E;
  readonly identity: EnvelopeIdentity;
}

/** The JSON body of each request, by event. */
export type Envelope =
  | Base<'connect' | 'refresh'>
  | (Base<'subscribe'> & { readonly topic: string })
  | (Base<'publish'> & { readonly topic: string; readonly data: unknown })
  | (Base<'rpc'> & { readonly method: string; readonly data: unknown })
  | (Base<'disconnect'> & { readonly code: number; readonly durationMs: number });

/** Builds request bodies from the contexts the gateway's core passes its handler. */
export class Envelopes {
  readonly #node: string;
  readonly #claims: readonly string[];
  readonly #clock: Clock;

  constructor(node: string, forwardClaims: readonly string[], clock: Clock) {
    this.#node = node;
    this.#claims = forwardClaims;
    this.#clock = clock;
  }

  connect(context: ConnectContext): string {
    const event = context.refresh ? 'refresh' : 'connect';
    return encode({ event, identity: this.identity(context, context.expiresAt / 1000) });
  }

  subscribe(context: SubscribeContext): string {
    return encode({ event: 'subscribe', identity: this.identity(context), topic: context.topic });
  }

  publish(context: PublishContext): string {
    return encode({ event: 'publish', identity: this.identity(context), topic: context.topic, data: context.data ?? null });
  }

  rpc(context: RpcContext): string {
    return encode({ event: 'rpc', identity: this.identity(context), method: context.method, data: context.data ?? null });
  }

  /** Undefined for a connection that never authenticated: there is no one to report. */
  disconnect({ connection, user, code, durationMs }: DisconnectEvent): string | undefined {
    if (user === undefined) return undefined;
    const claims = connection.claims ?? {};
    const exp = typeof claims.exp === 'number' ? claims.exp : (connection.expiresAt ?? 0) / 1000;
    const identity = this.#make(user, claims, connection.id, exp, undefined);
    return encode({ event: 'disconnect', identity, code, durationMs });
  }

  /** The `identity` block for `context` (also the queue path's, `@authsocket/worker`). */
  identity(context: MessageContext, exp?: number): EnvelopeIdentity {
    const { claims, connection } = context;
    const seconds = exp ?? (typeof claims.exp === 'number' ? claims.exp : (connection.expiresAt ?? 0) / 1000);
    return this.#make(context.user, claims, connection.id, seconds, context.token);
  }

  #make(user: string, claims: Readonly<Record<string, unknown>>, connection: string, exp: number, token: string | undefined): EnvelopeIdentity {
    const forwarded: Record<string, unknown> = {};
    for (const name of this.#claims) if (Object.hasOwn(claims, name) && claims[name] !== undefined) forwarded[name] = claims[name];
    const identity = { user, claims: forwarded, connection, node: this.#node, exp, ts: this.#clock.now() };
    return token === undefined ? identity : { ...identity, token };
  }
}

function encode(envelope: Envelope): string {
  return JSON.stringify(envelope);
}
