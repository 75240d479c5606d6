import { CloseCode } from '@authsocket/protocol';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './transport.js';

/** What an attempt's socket reports. None of these is called once the attempt is aborted. */
export interface SocketHandlers {
  open(): void;
  frame(data: unknown): void;
  /** The socket closed: a socket that never opened (refused upgrade, unreachable server) reports 1006 and no reason. */
  close(code: number, reason: string): void;
}

/**
 * One connection attempt: the wait before it, its credentials, then its socket until that socket is
 * gone. It is aborted when the socket closes or is released, when the client stops, and when another
 * attempt begins. Every continuation the attempt started (a timer, a credential promise, a socket
 * event, an in-band refresh) checks `aborted` before acting, so nothing late can act for a client
 * that has moved on.
 */
export class Attempt {
  readonly #controller = new AbortController();
  #socket: WebSocketLike | undefined;

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#controller.signal.aborted;
  }

  /** The socket, from `open()` until it closes or is released. */
  get socket(): WebSocketLike | undefined {
    return this.#socket;
  }

  /** The socket is open: frames can go out. */
  get writable(): boolean {
    return this.#socket?.readyState === OPEN;
  }

  abort(): void {
    this.#controller.abort();
  }

  /** A controller aborted with this attempt, for work that may also end before it (abort it when done). */
  child(): AbortController {
    const child = new AbortController();
    this.signal.addEventListener('abort', () => child.abort(), { once: true, signal: child.signal });
    return child;
  }

  /** Opens the attempt's socket; throws what the constructor throws (a malformed URL or subprotocol). */
  open(WebSocket: WebSocketConstructor, url: string, protocols: string[], handlers: SocketHandlers): void {
    const socket = new WebSocket(url, protocols);
    this.#socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      if (this.aborted) return;
      opened = true;
      handlers.open();
    });
    socket.addEventListener('message', (event) => {
      if (!this.aborted) handlers.frame(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (this.release() === undefined) return;
      handlers.close(opened ? event.code : CloseCode.Abnormal, opened ? event.reason : '');
    });
    // The `close` event that always follows carries the outcome.
    socket.addEventListener('error', () => {});
  }

  /** Writes a frame while the socket is there; nothing after the attempt ended. */
  send(text: string): void {
    if (!this.aborted) this.#socket?.send(text);
  }

  /**
   * Ends the attempt and hands back its socket (undefined when it had none, or had already let go),
   * so the caller closes it; that socket's late events are ignored.
   */
  release(): WebSocketLike | undefined {
    const socket = this.aborted ? undefined : this.#socket;
    this.#socket = undefined;
    this.abort();
    return socket;
  }
}
