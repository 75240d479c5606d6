/** The WebSocket subprotocol every client offers and the server selects. */
export const SUBPROTOCOL = 'authsocket.v1';

/** `Sec-WebSocket-Protocol` entry carrying a connection ticket: `ticket.<ticket>`. */
export const TICKET_PROTOCOL_PREFIX = 'ticket.';

/** `Sec-WebSocket-Protocol` entry carrying a JWT at the handshake: `token.<jwt>`. */
export const TOKEN_PROTOCOL_PREFIX = 'token.';

/** `Sec-WebSocket-Protocol` entry carrying resume positions: `resume.<base64url of JSON>`. */
export const RESUME_PROTOCOL_PREFIX = 'resume.';

/** Query parameters accepted as an alternative to the subprotocol entries. */
export const TICKET_QUERY_PARAM = 'ticket';
export const TOKEN_QUERY_PARAM = 'token';

/** Path of the ticket endpoint on the server. */
export const TICKET_PATH = '/auth/ticket';

/** Bounds every frame is validated against (PROTOCOL.md, "Messages"). */
export const LIMITS = Object.freeze({
  idLength: 64,
  topicLength: 256,
  methodLength: 128,
  tokenLength: 8192,
  streamNameLength: 256,
  epochLength: 64,
  resumeStreams: 64,
  depth: 32,
});

/** The stream of messages addressed to one user (PROTOCOL.md, "Streams, offsets and resume"). */
export const userStream = (user: string): string => `user:${user}`;

/** Prefix of topic stream names. */
export const TOPIC_STREAM_PREFIX = 'topic:';

/** The stream of messages published on one topic. */
export const topicStream = (topic: string): string => `${TOPIC_STREAM_PREFIX}${topic}`;
