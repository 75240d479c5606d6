export { type Clock, ManualClock, systemClock } from './clock.js';
export type { TrustProxy } from './client-address.js';
export { type Deadline, DeadlineQueue } from './deadlines.js';
export {
  AuthSocketError,
  ConfigError,
  OutcomeUnknownError,
  StoreUnavailableError,
  TicketError,
  TokenError,
  type TokenFailureReason,
} from './errors.js';
export type { AuthMethod, AuthStage, GatewayEvents } from './events.js';
export { createGateway, Gateway } from './gateway.js';
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
export { RevokedError } from './identity.js';
export { type Logger, silentLogger } from './logger.js';
export type {
  ExpiryPolicy,
  GatewayOptions,
  MessageEvent,
  TicketMode,
  TopicAction,
} from './options.js';
export type { RateLimit } from './rate-limit.js';
export type { Connection, ConnectionState } from './session.js';
export {
  MemoryRevocationStore,
  MemoryTicketStore,
  type RevocationStore,
  type TicketRecord,
  type TicketStore,
} from './stores.js';
export { ticketKey } from './tickets.js';
export { createTokenVerifier, type JwtOptions, type TokenVerifier, type VerifiedToken } from './token-verifier.js';
