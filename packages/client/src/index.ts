export type { Wait } from './backoff.js';
export { AuthSocket, type PresenceOptions, type PresenceResult, type SendOptions, type SetAuthOptions } from './client.js';
export {
  AuthSocketError,
  CancelledError,
  ConnectionLostError,
  QueueFullError,
  RequestRefusedError,
  SubscriptionEndedError,
  TicketRequestError,
  UnauthorizedError,
} from './errors.js';
export type { AuthenticatedEvent, AuthSocketEvents, CloseEvent, InboundMessage, ReauthRequiredEvent } from './events.js';
export type { AuthSocketSnapshot } from './machine.js';
export type { AuthCredentials, AuthSocketOptions, SetAuthStrategy } from './options.js';
export type { ConnectionState, StateChange } from './state.js';
export { fetchTicket, type FetchTicketOptions, type Ticket } from './ticket.js';
export { type SubscribeOptions, Topic, type TopicEvents, type TopicState, type TopicStateChange } from './topic.js';
export type { CredentialPlacement, WebSocketConstructor, WebSocketLike } from './transport.js';
export { CloseCode, closeCodeAction, type CloseAction, type PresenceMember, type StreamPosition, type StreamState } from '@authsocket/protocol';
