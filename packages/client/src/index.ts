export { backoff, type BackoffOptions, timerWait, type Wait } from './backoff.js';
export {
  AuthSocket,
  type AuthenticatedEvent,
  type AuthSocketEvents,
  type AuthSocketSnapshot,
  type CloseEvent,
  type InboundMessage,
  type ReauthRequiredEvent,
  type SendOptions,
  type SetAuthOptions,
} from './client.js';
export {
  AuthSocketError,
  CancelledError,
  ConnectionLostError,
  QueueFullError,
  RequestRefusedError,
  TicketRequestError,
  UnauthorizedError,
} from './errors.js';
export { type AuthCredentials, type AuthSocketOptions, DEFAULTS, type SetAuthStrategy } from './options.js';
export { StreamPositions, type StreamCoordinates } from './positions.js';
export { BoundedQueue } from './queue.js';
export { singleFlight } from './single-flight.js';
export { canTransition, type ConnectionState, isAuthenticated, type StateChange, TRANSITIONS } from './state.js';
export { fetchTicket, type FetchTicketOptions, type Ticket } from './ticket.js';
export { base64url, connectionTarget, type CredentialPlacement, type WebSocketConstructor, type WebSocketLike } from './transport.js';
export { CloseCode, closeCodeAction, type CloseAction, type StreamPosition, type StreamState } from '@authsocket/protocol';
