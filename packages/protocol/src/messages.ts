/** Every frame type of `authsocket.v1`; the comment says who sends it. */
export const MessageType = Object.freeze({
  /** client -> server: authenticate or re-authenticate in band */
  Auth: 'auth',
  /** both directions: application data */
  Message: 'message',
  /** client -> server */
  Subscribe: 'subscribe',
  /** client -> server */
  Unsubscribe: 'unsubscribe',
  /** client -> server */
  Publish: 'publish',
  /** client -> server */
  Logout: 'logout',
  /** client -> server */
  Ping: 'ping',
  /** client -> server: a request for the backend, answered by `result` or `error` with its `id` */
  Rpc: 'rpc',
  /** both directions: who is subscribed to a topic (request, and its answer with the same `id`) */
  Presence: 'presence',
  /** server -> client */
  AuthOk: 'auth_ok',
  /** server -> client */
  ReauthRequired: 'reauth_required',
  /** server -> client */
  Ack: 'ack',
  /** server -> client */
  Error: 'error',
  /** server -> client */
  LoggedOut: 'logged_out',
  /** server -> client */
  Pong: 'pong',
  /** server -> client: the answer to an `rpc` */
  Result: 'result',
  /** server -> client: a connection joined a topic this connection reads (presence with join/leave on) */
  Join: 'join',
  /** server -> client: a connection left a topic this connection reads */
  Leave: 'leave',
  /** server -> client: the server ended this connection's subscription to a topic (permission gone, subscription token expired) */
  Unsubscribed: 'unsubscribed',
} as const);
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** A position in a message stream: where a client has read up to. */
export interface StreamPosition {
  readonly epoch: string;
  readonly offset: number;
}

export interface AuthMessage {
  readonly type: typeof MessageType.Auth;
  readonly token: string;
  readonly resume?: Readonly<Record<string, StreamPosition>>;
}

export interface ClientDataMessage {
  readonly type: typeof MessageType.Message;
  readonly data: unknown;
  readonly id?: string;
  readonly token?: string;
}

export interface SubscribeMessage {
  readonly type: typeof MessageType.Subscribe;
  readonly topic: string;
  readonly id?: string;
  readonly since?: StreamPosition;
  /** A subscription token: a JWT naming this topic (and this user) that grants it on its own, until its `exp`. */
  readonly token?: string;
}

export interface UnsubscribeMessage {
  readonly type: typeof MessageType.Unsubscribe;
  readonly topic: string;
  readonly id?: string;
}

export interface PublishMessage {
  readonly type: typeof MessageType.Publish;
  readonly topic: string;
  readonly data: unknown;
  readonly id?: string;
  readonly token?: string;
}

export interface LogoutMessage {
  readonly type: typeof MessageType.Logout;
}

export interface PingMessage {
  readonly type: typeof MessageType.Ping;
  readonly id?: string;
}

export interface RpcMessage {
  readonly type: typeof MessageType.Rpc;
  /** Required: the `result` or `error` answering it carries the same `id`. */
  readonly id: string;
  readonly method: string;
  readonly data?: unknown;
  /** Per-message-auth mode: the token for this request. */
  readonly token?: string;
}

/** Who is subscribed to `topic`; `countOnly` asks for the count alone (cheap on a large topic). */
export interface PresenceRequestMessage {
  readonly type: typeof MessageType.Presence;
  readonly id: string;
  readonly topic: string;
  readonly countOnly?: boolean;
}

export type ClientMessage =
  | AuthMessage
  | PresenceRequestMessage
  | RpcMessage
  | ClientDataMessage
  | SubscribeMessage
  | UnsubscribeMessage
  | PublishMessage
  | LogoutMessage
  | PingMessage;

/**
 * Where a stream stands for this connection: it will receive exactly the messages after `offset`.
 * `recovered` answers a resume request: true when everything after the requested position follows,
 * false when it cannot (history trimmed, epoch changed, or not readable: then epoch/offset are absent
 * only if the stream may not be read at all).
 */
export interface StreamState {
  readonly epoch?: string;
  readonly offset?: number;
  readonly recovered?: boolean;
}

export interface AuthOkMessage {
  readonly type: typeof MessageType.AuthOk;
  readonly user: string;
  /** Token expiry, ms since the epoch. */
  readonly expiresAt: number;
  /** Positions of the streams this connection reads (its user stream, resumed topics). */
  readonly streams?: Readonly<Record<string, StreamState>>;
  /** What the application's backend added on connect (or refresh). */
  readonly data?: unknown;
}

export type ReauthReason = 'expiring' | 'expired';

export interface ReauthRequiredMessage {
  readonly type: typeof MessageType.ReauthRequired;
  /** Last moment a fresh `auth` is accepted, ms since the epoch; after it the socket closes 4419. */
  readonly deadline: number;
  readonly reason: ReauthReason;
}

export interface ServerDataMessage {
  readonly type: typeof MessageType.Message;
  readonly data: unknown;
  readonly topic?: string;
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

export interface AckMessage {
  readonly type: typeof MessageType.Ack;
  readonly id: string;
  /** On a `subscribe`: the topic stream's position (and whether `since` was recovered). */
  readonly streams?: Readonly<Record<string, StreamState>>;
  /** On a `subscribe`: what the application's backend added; on a `message`: what its handler returned (a queue's entry id). */
  readonly data?: unknown;
}

/** The answer to an `rpc`: the backend's response. */
export interface ResultMessage {
  readonly type: typeof MessageType.Result;
  readonly id: string;
  readonly data: unknown;
}

/**
 * Codes of the non-fatal `error` frame: `forbidden` (not allowed), `rejected` (the application said
 * no; `data` may say why), `rate_limited`, `unavailable` (the backend is down, slow or overloaded:
 * `temporary`, retry later), `not_found` (no such rpc method), `bad_request` (the frame was
 * well-formed but the backend cannot take it), `limit_exceeded` (a cap was reached), `token_expired`
 * (the request's own token, e.g. a subscription token, is expired).
 */
export type ErrorCode =
  | 'forbidden'
  | 'rejected'
  | 'rate_limited'
  | 'unavailable'
  | 'not_found'
  | 'bad_request'
  /** A cap was reached (e.g. the topic's presence holds its most members): not retried at once. */
  | 'limit_exceeded'
  /** The token given with the request (a subscription token) is expired: get a new one and retry. */
  | 'token_expired';

export interface ErrorMessage {
  readonly type: typeof MessageType.Error;
  readonly id?: string;
  readonly code: ErrorCode;
  readonly message: string;
  /** With `rate_limited`: how long to wait before reconnecting, in ms. */
  readonly retryAfter?: number;
  /** True when the same request may succeed later (`unavailable`): retry it, do not give up. */
  readonly temporary?: boolean;
  /** What the application added to a refusal. */
  readonly data?: unknown;
}

export interface LoggedOutMessage {
  readonly type: typeof MessageType.LoggedOut;
}

export interface PongMessage {
  readonly type: typeof MessageType.Pong;
  readonly id?: string;
}

/** One subscriber of a topic, as presence reports it. */
export interface PresenceMember {
  readonly user: string;
  readonly connection: string;
  /** What the operator takes from a claim of the member's token to show others (a display name). */
  readonly info?: unknown;
}

/** The answer to a `presence` request. */
export interface PresenceMessage {
  readonly type: typeof MessageType.Presence;
  readonly id: string;
  readonly topic: string;
  readonly count: number;
  /** Absent when the request asked for `countOnly`. */
  readonly members?: readonly PresenceMember[];
}

export interface JoinMessage {
  readonly type: typeof MessageType.Join;
  readonly topic: string;
  readonly member: PresenceMember;
}

export interface LeaveMessage {
  readonly type: typeof MessageType.Leave;
  readonly topic: string;
  readonly member: PresenceMember;
}

/**
 * Why the server ended a subscription: `forbidden` (a reauth's claims no longer allow the topic),
 * `expired` (the subscription token's `exp` passed).
 */
export type UnsubscribeReason = 'forbidden' | 'expired';

export interface UnsubscribedMessage {
  readonly type: typeof MessageType.Unsubscribed;
  readonly topic: string;
  readonly reason: UnsubscribeReason;
  readonly message: string;
}

export type ServerMessage =
  | AuthOkMessage
  | PresenceMessage
  | JoinMessage
  | LeaveMessage
  | UnsubscribedMessage
  | ReauthRequiredMessage
  | ServerDataMessage
  | AckMessage
  | ErrorMessage
  | LoggedOutMessage
  | PongMessage
  | ResultMessage;
