import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from './logger.js';

/** How long a refused connection's further input is read and dropped before the socket is destroyed. */
export const LINGER_MS = 2_000;

/** Node's own answers (`_http_server.js`), plus `Connection: close`. */
const ANSWERS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * Answers a request node:http could not parse (headers over `maxHeaderSize`, a malformed request
 * line, a header timeout) and closes in order. Node's default writes the answer and destroys the
 * socket at once: with the rest of a large request still unread, the kernel sends RST, and a client
 * still writing gets ECONNRESET instead of the 431. Here the answer goes out with FIN, what the
 * client still sends is read and dropped for at most `LINGER_MS` (nginx's lingering close), then
 * the socket is destroyed. Never logs the request's bytes: they may hold a token.
 */
export function answerClientErrors(server: http.Server, logger: Logger): void {
  // The response in flight on a socket: an answer must not be written into the middle of one.
  const responses = new WeakMap<Socket, http.ServerResponse>();
  const lingering = new WeakSet<Socket>();
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    responses.set(request.socket, response);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (lingering.has(socket)) return;
    const inFlight = responses.get(socket);
    const writable = socket.writable && (inFlight === undefined || !inFlight.headersSent || inFlight.writableFinished);
    const code = error.code ?? 'unknown';
    // A peer's reset or a half-written request is ordinary traffic; a refusal is worth a debug line.
    if (code !== 'ECONNRESET' && code !== 'EPIPE') logger.debug({ code }, 'http request refused before routing');
    if (!writable) {
      socket.destroy();
      return;
    }
    lingering.add(socket);
    socket.end(`HTTP/1.1 ${ANSWERS[code] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
}
