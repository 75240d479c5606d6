import { CloseCode } from './close-codes.js';

/** Base of every authsocket error: a stable `code` to branch on, `name` set to the class name. */
export class AuthSocketError extends Error {
  /** Stable machine-readable code, e.g. `ERR_PROTOCOL`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A frame that breaks `authsocket.v1`; `closeCode` is what the receiver closes the socket with. */
export class ProtocolError extends AuthSocketError {
  readonly closeCode: CloseCode;

  constructor(message: string, closeCode: CloseCode = CloseCode.BadRequest) {
    super('ERR_PROTOCOL', message);
    this.closeCode = closeCode;
  }
}

const MAX_REASON_BYTES = 123;

/** Cuts `reason` to the 123 UTF-8 bytes a close frame allows, without splitting a character. */
export function toCloseReason(reason: string): string {
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const cp = char.codePointAt(0) as number;
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + size > MAX_REASON_BYTES) break;
    bytes += size;
    end += char.length;
  }
  return reason.slice(0, end);
}
