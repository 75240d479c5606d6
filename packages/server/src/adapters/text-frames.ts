import * as ws from 'ws';

// ws frames every `send` on its own: an options object or two, a header Buffer and a corked pair of
// writes per socket. A fan-out sends one payload Buffer to thousands of sockets, so the whole frame
// (header + payload) is built once, by ws's own `Sender.frame`, and the same Buffer is written to
// each socket.

/** `Sender.frame`, a public export of ws that @types/ws does not declare. */
interface FrameOptions {
  readonly fin: boolean;
  readonly opcode: number;
  readonly mask: boolean;
  readonly readOnly: boolean;
  readonly rsv1: boolean;
}
const { frame } = (ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

/** A final, unmasked (server to client), uncompressed text frame. */
const TEXT: FrameOptions = { fin: true, opcode: 0x1, mask: false, readOnly: false, rsv1: false };

/**
 * Server text frames, with the last one kept: consecutive sends of the same payload Buffer (every
 * socket of a broadcast, a topic or a user) reuse its frame. Payload Buffers are never written to
 * after they are made, so identity is enough. Holds on to one frame (the last) until the next send.
 */
export class TextFrames {
  #payload: Uint8Array | undefined;
  #frame: Buffer | undefined;

  /** The complete WebSocket frame carrying `payload` as text. */
  of(payload: Uint8Array): Buffer {
    if (payload === this.#payload) return this.#frame as Buffer;
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const [header, body] = frame(data, TEXT) as [Buffer, Buffer | undefined];
    const built = body === undefined ? header : Buffer.concat([header, body], header.length + body.length);
    this.#payload = payload;
    this.#frame = built;
    return built;
  }
}
