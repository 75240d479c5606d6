import type {
  Connection,
  ConnectContext,
  DisconnectEvent,
  MessageContext,
  PublishContext,
  RpcContext,
  SubscribeContext,
} from '@authsocket/server';
import type { JWTPayload } from 'jose';

// Handler contexts built as the gateway's core builds them (core/message-context.ts): a connection,
// the user, the claims of the token, and for per-message auth the frame's token.

/** `exp` of the test identity, seconds. */
export const EXP = 2_000_000_000;
export const CLAIMS: JWTPayload = { sub: 'alice', exp: EXP, iat: EXP - 300, tenant: 'acme', role: 'admin', email: 'a@example.com' };

export function connection(id = 'c0ffee00-0000-4000-8000-000000000007', claims: JWTPayload = CLAIMS): Connection {
  return {
    id,
    remoteAddress: '127.0.0.1',
    state: 'authenticated',
    user: claims.sub,
    claims,
    expiresAt: (claims.exp as number) * 1000,
    topics: new Set(),
    send: () => true,
    close: () => undefined,
  };
}

function message(data: unknown, token?: string, claims: JWTPayload = CLAIMS, id = 'c0ffee00-0000-4000-8000-000000000007'): MessageContext {
  return {
    connection: connection(id, claims),
    user: claims.sub as string,
    claims,
    data,
    ...(token === undefined ? {} : { token }),
    reply: () => true,
    publish: async () => 0,
    close: () => undefined,
  };
}

export function connectContext({ refresh = false, claims = CLAIMS } = {}): ConnectContext {
  return { ...message(undefined, undefined, claims), refresh, expiresAt: (claims.exp as number) * 1000 };
}

export function subscribeContext(topic: string): SubscribeContext {
  return { ...message(undefined), topic };
}

export function publishContext(topic: string, data: unknown, token?: string): PublishContext {
  return { ...message(data, token), topic };
}

export function rpcContext(method: string, data: unknown, token?: string): RpcContext {
  return { ...message(data, token), method };
}

/** A closed connection; `authenticated: false` for one that never got past `auth`. */
export function disconnectEvent(code = 1000, durationMs = 1234, { authenticated = true } = {}): DisconnectEvent {
  return { connection: connection(), user: authenticated ? 'alice' : undefined, code, durationMs };
}
