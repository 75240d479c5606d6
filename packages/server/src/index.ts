export { type Clock, ManualClock, systemClock } from './clock.js';
export type { TrustProxy } from './client-address.js';
export { type Deadline, DeadlineQueue } from './deadlines.js';
export {
  AuthSocketError,
  type AuthSocketErrorCode,
  classify,
  ConfigError,
  type ErrorClass,
  HandlerError,
  KeysUnavailableError,
  OutcomeUnknownError,
  RevokedError,
  StoreUnavailableError,
  TicketError,
  TokenError,
  type TokenFailureReason,
} from './errors.js';
export type { AuthMethod, AuthStage, GatewayEvents } from './events.js';
export { createGateway, Gateway } from './adapters/node-ws.js';
export { GatewayCore } from './core/gateway.js';
export type { Admitted, Refused } from './core/admission.js';
export {
  type ConnectContext,
  type ConnectResult,
  type DisconnectEvent,
  type HttpReply,
  type HttpRequest,
  type MessageContext,
  type MessageHandler,
  type PublishContext,
  type RpcContext,
  type ServerSocket,
  type SocketEvents,
  SocketState,
  type SubscribeContext,
  type Transport,
  type UpgradeRequest,
  type Verdict,
} from './core/ports.js';
export type {
  Audience,
  Broker,
  BrokerHandlers,
  BrokerStatus,
  ControlMessage,
  HistoryRead,
  Publication,
  PublishOptions,
} from './broker.js';
export { MemoryBroker, type MemoryBrokerOptions } from './memory-broker.js';
export { type Logger, silentLogger } from './logger.js';
export {
  describeOptions,
  type ExpiryPolicy,
  GATEWAY_OPTIONS,
  type GatewayOptions,
  type HistoryOptions,
  type MessageEvent,
  type OptionDescription,
  type OptionSpec,
  type PresenceOptions,
  type TicketMode,
  type TopicAction,
} from './options.js';
export { type PermissionRule, Permissions } from './permissions.js';
export { DEFAULT_HISTORY, DEFAULT_IDEMPOTENCY_WINDOW_MS, DEFAULT_TICKET_TTL_MS } from './defaults.js';
export type { RateLimit } from './rate-limit.js';
export type { Connection, ConnectionState } from './core/session.js';
export {
  MemoryRevocationStore,
  MemoryTicketStore,
  type RevocationStore,
  type TicketRecord,
  type TicketStore,
} from './stores.js';
export type { ConnectionRecord, ConnectionStore } from './connection-store.js';
export { MemoryPresenceStore, type PresenceMember, type PresenceStore } from './presence-store.js';
export { ticketKey } from './tickets.js';
export { JWKS_OPTIONS, type JwksOptionSpec, type JwksStatus } from './jwks.js';
export {
  createTokenVerifier,
  DEFAULT_CLOCK_TOLERANCE_SEC,
  DEFAULT_JWT_ALGORITHMS,
  DEFAULT_USER_CLAIM,
  type JwtOptions,
  type TokenVerifier,
  type VerifiedToken,
} from './token-verifier.js';
