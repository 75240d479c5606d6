/**
 * A `@hyper-fetch/sockets` (v8) connector over `AuthSocket`, with no dependency on Hyper-fetch:
 * pass it to `SocketAdapter.setConnector()`.
 *
 * ```ts
 * const adapter = () => new SocketAdapter({ name: 'authsocket' }).setConnector(authsocketConnector({ getTicket }));
 * const socket = new Socket({ url: 'wss://example.com/ws', adapter });
 * socket.createListener<Chat>()({ topic: 'room' }).listen(({ data }) => show(data));
 * ```
 *
 * Every connection — the first, `socket.reconnect()`, and each reconnect after a close — gets a fresh
 * ticket from `getTicket` (tickets are single-use); query params never carry credentials.
 */
import { AuthSocket } from './client.js';
import type { InboundMessage } from './events.js';
import type { AuthSocketOptions } from './options.js';

/** Topic of the messages pushed to the user (`sendToUser`) that are not `{topic, data}` themselves. */
export const USER_TOPIC = 'message';

/** A Hyper-fetch listener callback. */
type Callback = (...args: never[]) => unknown;

/** The part of Hyper-fetch's adapter bindings the connector uses. */
export interface HyperFetchBindings {
  readonly socket: { readonly url: string };
  getQueryParams(): unknown;
  onConnect(): boolean;
  onDisconnect(): boolean;
  onReconnect(steps: { disconnect: () => Promise<unknown>; connect: () => Promise<unknown> }): Promise<boolean>;
  onConnected(): void;
  onDisconnected(): void;
  onListen(args: { listener: { readonly topic: string }; callback: Callback }): () => void;
  onEmit(args: { emitter: object }): Promise<{ readonly topic: string; readonly payload?: unknown } | null>;
  onError(args: { error: Error }): void;
  onEvent(args: { topic: string; data: unknown; extra: never }): void;
}

export interface AuthsocketConnectorOptions extends Omit<AuthSocketOptions, 'url'> {
  /** Default: the Socket's `url` plus its query params at creation. */
  readonly url?: string;
  /** How an emitter's `{topic, payload}` reaches the server: `'message'` (default: `{topic, data}` to the application) or `'publish'` (to the topic's subscribers). */
  readonly emitAs?: 'message' | 'publish';
  /** Called with the AuthSocket the connector created (to `rpc`, `setAuth`, observe its state). */
  readonly onClient?: (client: AuthSocket) => void;
}

/** Hyper-fetch's `{topic, data}` for a message: its topic, or the user's `{topic, data}` push, or `USER_TOPIC`. */
function route(message: InboundMessage): { topic: string; data: unknown } {
  if (message.topic !== undefined) return { topic: message.topic, data: message.data };
  const data = message.data as { topic?: unknown; data?: unknown } | null;
  if (typeof data === 'object' && data !== null && typeof data.topic === 'string') return { topic: data.topic, data: data.data };
  return { topic: USER_TOPIC, data: message.data };
}

export function authsocketConnector({ emitAs = 'message', onClient, ...options }: AuthsocketConnectorOptions) {
  return (b: HyperFetchBindings) => {
    const query = b.getQueryParams();
    const client = new AuthSocket({ ...options, url: options.url ?? `${b.socket.url}${typeof query === 'string' ? query : ''}` });
    onClient?.(client);
    let open = false;
    client.on('state', ({ newState }) => {
      const now = newState === 'open' || newState === 'reauthenticating';
      if (now && !open) b.onConnected();
      if (!now && open) b.onDisconnected();
      open = now;
    });
    client.on('message', (message) => {
      b.onEvent({ ...route(message), extra: message as never });
    });
    client.on('error', (error) => b.onError({ error }));
    const connect = async () => {
      if (!b.onConnect()) return false;
      client.connect();
      return true;
    };
    const disconnect = async () => {
      b.onDisconnect();
      client.close();
      return true;
    };
    void connect();
    return {
      connect,
      disconnect,
      reconnect: () => b.onReconnect({ disconnect, connect }),
      listen(listener: { readonly topic: string }, callback: Callback) {
        if (listener.topic !== USER_TOPIC) client.topic(listener.topic).subscribe().catch((error: unknown) => b.onError({ error: error as Error }));
        return b.onListen({ listener, callback });
      },
      async emit(emitter: object) {
        const mapped = await b.onEmit({ emitter });
        if (!mapped) return false;
        if (emitAs === 'publish') client.publish(mapped.topic, mapped.payload);
        else client.send({ topic: mapped.topic, data: mapped.payload });
        return true;
      },
    };
  };
}
