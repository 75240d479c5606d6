/**
 * `authsocket.v1` for `react-use-websocket` (PROTOCOL.md, "Third-party clients"), with no dependency
 * on it: the object returned is its `url` function and its options.
 *
 * ```tsx
 * const socket = useMemo(() => authsocketOptions({ url: 'wss://example.com/ws', getTicket, getToken }), []);
 * const { lastJsonMessage, sendJsonMessage } = useWebSocket(socket.getUrl, socket);
 * ```
 *
 * Create it once per connection (`useMemo`, or at module scope): it holds the connection's state, and
 * `react-use-websocket` reconnects whenever the `url` function changes identity.
 */
import { backoff, CloseCode, closeCodeAction, type CloseAction, MessageType, type StreamPosition } from '@authsocket/protocol';
import { UnauthorizedError } from './errors.js';
import { StreamPositions } from './positions.js';
import { attemptTarget, type CredentialPlacement } from './transport.js';

export interface AuthsocketOptionsInput {
  /** `ws://` or `wss://` URL of the gateway's WebSocket endpoint. */
  readonly url: string;
  /** A fresh ticket (`fetchTicket()`), called before every connection: tickets are single-use. */
  readonly getTicket?: () => Promise<string>;
  /**
   * A current JWT: called before every connection without a ticket (sent as the first `auth` frame)
   * and on every `reauth_required` (answered in band). Without it, `reauth_required` reconnects with a
   * fresh ticket.
   */
  readonly getToken?: () => Promise<string>;
  /** Where the ticket travels: `'protocol'` (default; stays out of access logs) or `'query'` (`?ticket=`). */
  readonly ticketIn?: CredentialPlacement;
  /** Smallest reconnect delay and base of its growth. Default 500 ms. */
  readonly minReconnectDelayMs?: number;
  /** Largest reconnect delay. Default 20 000 ms. */
  readonly maxReconnectDelayMs?: number;
  /** Consecutive failed attempts after which react-use-websocket gives up. Default 30. */
  readonly reconnectAttempts?: number;
  /** Called once when the helper decides not to reconnect: a `stop` close code, a second 4401, or credentials refused. */
  readonly onStop?: (why: { readonly code?: number; readonly error?: unknown }) => void;
  /** Errors with no caller: a credential provider that failed. */
  readonly onError?: (error: unknown) => void;
  /** Your own handlers, called after the helper's. */
  readonly onOpen?: (event: Event) => void;
  readonly onMessage?: (event: MessageEvent) => void;
  readonly onClose?: (event: CloseEvent) => void;
  /** Random source of the backoff jitter, in `[0, 1)`. Default `Math.random`. */
  readonly random?: () => number;
}

/** `react-use-websocket`'s `Options` (the part this helper sets) plus `getUrl`, its `url` argument. */
export interface AuthsocketHookOptions {
  /** Pass as `useWebSocket`'s first argument: fetches fresh credentials before every connection. */
  readonly getUrl: () => Promise<string>;
  /** `authsocket.v1` and the current ticket / resume entries; updated in place before each connection. */
  readonly protocols: string[];
  readonly onOpen: (event: Event) => void;
  readonly onMessage: (event: MessageEvent) => void;
  readonly onClose?: (event: CloseEvent) => void;
  /** Drops a message delivered twice after a resume (same stream and epoch, offset not past the last). */
  readonly filter: (event: MessageEvent) => boolean;
  readonly shouldReconnect: (event: CloseEvent) => boolean;
  readonly reconnectInterval: (attempt: number) => number;
  readonly reconnectAttempts: number;
  /** False: the helper retries its own credential fetches; react-use-websocket's would double the reconnects. */
  readonly retryOnError: false;
  /** Stream positions this connection has reached, as sent in the next resume. */
  positions(): Readonly<Record<string, StreamPosition>>;
}

interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Options for `useWebSocket(options.getUrl, options)` that speak `authsocket.v1`. */
export function authsocketOptions(input: AuthsocketOptionsInput): AuthsocketHookOptions {
  const { getTicket, getToken, onStop, onError } = input;
  if (!getTicket && !getToken) throw new TypeError(`authsocketOptions needs 'getTicket' or 'getToken'`);
  const delays = { minDelayMs: input.minReconnectDelayMs ?? 500, maxDelayMs: input.maxReconnectDelayMs ?? 20_000 };
  const random = input.random ?? Math.random;
  const protocols: string[] = [];
  const positions = new StreamPositions();
  let firstAuth: string | undefined; // the token for the first `auth` frame of the coming socket
  let refreshedOnce = false; // a 4401 already got its one refresh since the last auth_ok
  let forced: CloseAction | undefined; // what the helper's own close of the socket means
  let nextDelay: number | undefined; // the delay shouldReconnect chose, read by reconnectInterval
  let retryAfter: number | undefined;
  let duplicate = false;
  let stopped = false;

  const stop = (why: { code?: number; error?: unknown }): false => {
    if (!stopped) onStop?.(why);
    stopped = true;
    return false;
  };

  /** Calls `provider`, retrying anything but `UnauthorizedError` with backoff. */
  const fresh = async (provider: () => Promise<string>): Promise<string> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await provider();
      } catch (error) {
        if (error instanceof UnauthorizedError) {
          stop({ error });
          throw error;
        }
        onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt, delays, random)));
      }
    }
  };

  const sendAuth = (target: SocketLike, token: string, resume?: Readonly<Record<string, StreamPosition>>) => {
    target.send(JSON.stringify({ type: MessageType.Auth, token, ...(resume ? { resume } : {}) }));
  };

  return {
    protocols,
    reconnectAttempts: input.reconnectAttempts ?? 30,
    retryOnError: false,
    positions: () => positions.toResume() ?? {},

    async getUrl() {
      stopped = false;
      const ticket = getTicket ? await fresh(getTicket) : undefined;
      const token = !ticket && getToken ? await fresh(getToken) : undefined;
      const resume = positions.toResume();
      const target = attemptTarget(input.url, { ticket, token }, resume, { ticketIn: input.ticketIn ?? 'protocol', handshakeToken: false });
      protocols.splice(0, protocols.length, ...target.protocols);
      firstAuth = target.inBandToken;
      return target.url;
    },

    onOpen(event) {
      const socket = event.target as unknown as SocketLike;
      forced = undefined;
      retryAfter = undefined;
      if (firstAuth !== undefined) sendAuth(socket, firstAuth, positions.toResume());
      firstAuth = undefined;
      input.onOpen?.(event);
    },

    onMessage(event) {
      duplicate = false;
      let frame: unknown;
      try {
        frame = typeof event.data === 'string' ? JSON.parse(event.data) : undefined;
      } catch {
        frame = undefined;
      }
      if (isRecord(frame)) {
        const target = event.target as unknown as SocketLike;
        if (frame.type === MessageType.AuthOk || frame.type === MessageType.Ack) {
          if (frame.type === MessageType.AuthOk) refreshedOnce = false;
          if (isRecord(frame.streams)) {
            for (const [stream, state] of Object.entries(frame.streams)) {
              if (isRecord(state) && typeof state.epoch === 'string' && typeof state.offset === 'number') {
                positions.reset(stream, { epoch: state.epoch, offset: state.offset });
              }
            }
          }
        } else if (frame.type === MessageType.Message) {
          const { stream, epoch, offset } = frame;
          if (typeof stream === 'string' && typeof epoch === 'string' && typeof offset === 'number') {
            duplicate = !positions.accept({ stream, epoch, offset });
          }
        } else if (frame.type === MessageType.ReauthRequired) {
          if (getToken) {
            fresh(getToken).then((token) => sendAuth(target, token), (error: unknown) => onError?.(error));
          } else {
            // A ticket cannot authenticate in band: reconnect at once with a fresh one and resume.
            forced = 'refresh-now';
            target.close(CloseCode.Normal, 'reauth by reconnect');
          }
        } else if (frame.type === MessageType.Error && typeof frame.retryAfter === 'number') {
          retryAfter = frame.retryAfter;
        }
      }
      input.onMessage?.(event);
    },

    filter: () => !duplicate,

    ...(input.onClose ? { onClose: input.onClose } : {}),

    shouldReconnect(event) {
      const action = forced ?? closeCodeAction(event.code);
      forced = undefined;
      nextDelay = undefined;
      switch (action) {
        case 'stop':
          return stop({ code: event.code });
        case 'refresh-once':
          if (refreshedOnce) return stop({ code: event.code });
          refreshedOnce = true;
          nextDelay = 0;
          return true;
        case 'refresh-now':
          nextDelay = 0;
          return true;
        case 'retry-after':
          nextDelay = retryAfter;
          return true;
        case 'backoff':
          return true;
      }
    },

    reconnectInterval(attempt) {
      return nextDelay ?? backoff(attempt, delays, random);
    },
  };
}
