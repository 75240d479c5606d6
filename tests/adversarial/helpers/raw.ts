import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { SUBPROTOCOL } from '@authsocket/protocol';
import { attackerAddress } from './client.js';

/** RFC 6455 opcodes. */
export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

export interface FrameSpec {
  readonly payload?: Buffer | string;
  readonly opcode?: number;
  readonly fin?: boolean;
  readonly rsv1?: boolean;
  readonly rsv2?: boolean;
  readonly rsv3?: boolean;
  /** Clients must mask (RFC 6455 5.3); false to send an illegal unmasked frame. */
  readonly mask?: boolean;
  /** Announce this payload length instead of the real one (for lying headers). */
  readonly announcedLength?: number;
}

/** Encodes one client frame by hand: any flag, any opcode, any announced length. */
export function encodeFrame({
  payload = Buffer.alloc(0),
  opcode = Opcode.Text,
  fin = true,
  rsv1 = false,
  rsv2 = false,
  rsv3 = false,
  mask = true,
  announcedLength,
}: FrameSpec = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = announcedLength ?? data.length;
  const first = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f);
  const maskBit = mask ? 0x80 : 0;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([first, maskBit | length]);
  } else if (length < 65_536) {
    header = Buffer.alloc(4);
    header.writeUInt8(first, 0);
    header.writeUInt8(maskBit | 126, 1);
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(first, 0);
    header.writeUInt8(maskBit | 127, 1);
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!mask) return Buffer.concat([header, data]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = (data[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([header, key, masked]);
}

/** A close frame with `code` and `reason` (raw bytes allowed). */
export function closeFrame(code: number, reason: Buffer | string = ''): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code, 0);
  return encodeFrame({ opcode: Opcode.Close, payload: Buffer.concat([payload, Buffer.from(reason)]) });
}

export const textFrame = (text: string): Buffer => encodeFrame({ payload: text });

/** The upgrade request a browser would send. */
export function upgradeRequest(
  port: number,
  { path = '/ws', protocols = [SUBPROTOCOL], headers = {} }: { path?: string; protocols?: readonly string[]; headers?: Record<string, string> } = {},
): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...(protocols.length > 0 ? [`Sec-WebSocket-Protocol: ${protocols.join(', ')}`] : []),
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface ServerFrame {
  readonly opcode: number;
  readonly fin: boolean;
  readonly payload: Buffer;
}

export interface RawConnectOptions {
  readonly path?: string;
  readonly protocols?: readonly string[];
  readonly headers?: Record<string, string>;
  readonly localAddress?: string;
}

/**
 * A WebSocket peer on a bare TCP socket that sends exactly the bytes a test writes: for framing
 * attacks `ws` would refuse to produce. It parses what the server sends (text frames and the close
 * frame), answers a close frame with its own and ends, and never answers pings unless told to.
 */
export class RawPeer {
  readonly socket: net.Socket;
  /** The response head (status line and headers). */
  readonly head: string;
  readonly frames: ServerFrame[] = [];
  /** Resolves when the TCP socket is closed, with the server's close frame if one arrived. */
  readonly ended: Promise<{ code: number; reason: string } | undefined>;
  answerPings = false;
  #buffer: Buffer = Buffer.alloc(0);
  #close: { code: number; reason: string } | undefined;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: net.Socket, head: string, rest: Buffer) {
    this.socket = socket;
    this.head = head;
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        resolve(this.#close);
        this.#wake();
      }),
    );
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.resume();
    if (rest.length > 0) this.#read(rest);
  }

  /** Stops reading from the socket: the kernel buffers fill, then the server's. */
  stopReading(): void {
    this.socket.pause();
  }

  /** Connects and upgrades; rejects with the response head when the server does not answer 101. */
  static async connect(port: number, options: RawConnectOptions = {}): Promise<RawPeer> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress ?? attackerAddress() });
    socket.on('error', () => {});
    socket.write(upgradeRequest(port, options));
    const { head, rest } = await readHead(socket);
    if (!head.startsWith('HTTP/1.1 101')) {
      socket.destroy();
      throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
    }
    return new RawPeer(socket, head, rest);
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  sendText(text: string): void {
    this.write(textFrame(text));
  }

  sendJson(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  /** Server text frames, parsed. */
  get messages(): Array<Record<string, unknown>> {
    return this.frames
      .filter((frame) => frame.opcode === Opcode.Text)
      .map((frame) => JSON.parse(frame.payload.toString()) as Record<string, unknown>);
  }

  /** Waits for a text frame matching `predicate`. */
  async next(predicate: (frame: Record<string, unknown>) => boolean, ms = 5_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.socket.destroyed) throw new Error(`socket closed before the expected frame; got ${JSON.stringify(this.messages)}`);
      if (Date.now() > deadline) throw new Error(`no matching frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The server's close frame, waiting for the socket to close. */
  async closed(): Promise<{ code: number; reason: string } | undefined> {
    return this.ended;
  }

  #read(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const frame = parseServerFrame(this.#buffer);
      if (!frame) break;
      this.#buffer = this.#buffer.subarray(frame.size);
      this.frames.push(frame.frame);
      if (frame.frame.opcode === Opcode.Ping && this.answerPings) {
        this.write(encodeFrame({ opcode: Opcode.Pong, payload: frame.frame.payload }));
      }
      if (frame.frame.opcode === Opcode.Close && this.#close === undefined) {
        const payload = frame.frame.payload;
        this.#close = {
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.subarray(2).toString(),
        };
        // Finish the closing handshake like a well-behaved client, so the server releases at once.
        if (!this.socket.destroyed) this.socket.end(closeFrame(1000));
      }
    }
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
    this.#waiters.clear();
  }
}

function parseServerFrame(buffer: Buffer): { frame: ServerFrame; size: number } | undefined {
  if (buffer.length < 2) return undefined;
  const first = buffer[0] as number;
  const second = buffer[1] as number;
  let length = second & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  if (buffer.length < offset + length) return undefined;
  return {
    frame: { fin: (first & 0x80) !== 0, opcode: first & 0x0f, payload: Buffer.from(buffer.subarray(offset, offset + length)) },
    size: offset + length,
  };
}

/** Reads an HTTP response head; `rest` is whatever followed it in the same chunks. */
export function readHead(socket: net.Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve({ head: received.subarray(0, end).toString('latin1'), rest: received.subarray(end + 4) });
    };
    const onClose = () => reject(new Error(`closed before a response head; got ${JSON.stringify(received.toString('latin1'))}`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

export interface RawResponse {
  /** Every byte the server sent before closing. */
  readonly raw: Buffer;
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Wall time from the first byte written to the server's close, in ms. */
  readonly ms: number;
}

export interface RawExchangeOptions {
  localAddress?: string;
  /**
   * A client still sending after the server has answered: reading waits, `bytes` are written
   * `afterMs` after the request, then reading resumes. A server that closed with the request
   * unread has reset the connection by then, and the answer is lost.
   */
  more?: { afterMs: number; bytes: Buffer | string };
}

/**
 * Writes `request` on a fresh TCP connection and reads until the server closes (refused upgrades
 * and `Connection: close` requests).
 */
export function rawExchange(port: number, request: Buffer | string, { localAddress = attackerAddress(), more }: RawExchangeOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    let started = 0;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may cut the connection while a huge request is still being written: that is an answer too.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(later);
      const raw = Buffer.concat(chunks);
      const text = raw.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end === -1 ? text : text.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ raw, status, head, body: end === -1 ? '' : text.slice(end + 4), ms: performance.now() - started });
    });
    let later: NodeJS.Timeout | undefined;
    socket.once('connect', () => {
      started = performance.now();
      if (more) socket.pause();
      socket.write(request);
      if (!more) return;
      later = setTimeout(() => {
        if (!socket.destroyed) socket.write(more.bytes);
        later = setTimeout(() => socket.resume(), 100);
      }, more.afterMs);
    });
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('no answer within 10 s'));
    });
  });
}
