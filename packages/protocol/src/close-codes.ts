/** Every close code of `authsocket.v1` (PROTOCOL.md, "Close codes"). No bare number elsewhere. */
export enum CloseCode {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  UnsupportedData = 1003,
  Abnormal = 1006,
  InvalidPayload = 1007,
  PolicyViolation = 1008,
  MessageTooBig = 1009,
  InternalError = 1011,
  TryAgainLater = 1013,
  SlowConsumer = 4008,
  StreamGap = 4009,
  BadRequest = 4400,
  Unauthorized = 4401,
  Forbidden = 4403,
  AuthTimeout = 4408,
  TooManyConnections = 4409,
  TokenExpired = 4419,
  RateLimited = 4429,
}

/**
 * What a client does after a close:
 * - `stop`: do not reconnect;
 * - `backoff`: reconnect after a jittered, growing delay;
 * - `refresh-once`: get fresh credentials and reconnect; if those are refused too, stop;
 * - `refresh-now`: get fresh credentials and reconnect without waiting;
 * - `retry-after`: reconnect after the server's `retryAfter` hint.
 */
export type CloseAction = 'stop' | 'backoff' | 'refresh-once' | 'refresh-now' | 'retry-after';

export interface CloseCodeInfo {
  readonly name: string;
  readonly action: CloseAction;
}

export const CLOSE_CODES: Readonly<Record<CloseCode, CloseCodeInfo>> = Object.freeze({
  [CloseCode.Normal]: { name: 'normal', action: 'stop' },
  [CloseCode.GoingAway]: { name: 'going away', action: 'backoff' },
  [CloseCode.ProtocolError]: { name: 'protocol error', action: 'stop' },
  [CloseCode.UnsupportedData]: { name: 'unsupported data', action: 'stop' },
  [CloseCode.Abnormal]: { name: 'abnormal', action: 'backoff' },
  [CloseCode.InvalidPayload]: { name: 'invalid payload', action: 'stop' },
  [CloseCode.PolicyViolation]: { name: 'policy violation', action: 'stop' },
  [CloseCode.MessageTooBig]: { name: 'message too big', action: 'stop' },
  [CloseCode.InternalError]: { name: 'internal error', action: 'backoff' },
  [CloseCode.TryAgainLater]: { name: 'try again later', action: 'backoff' },
  [CloseCode.SlowConsumer]: { name: 'slow consumer', action: 'backoff' },
  [CloseCode.StreamGap]: { name: 'stream gap', action: 'backoff' },
  [CloseCode.BadRequest]: { name: 'bad request', action: 'stop' },
  [CloseCode.Unauthorized]: { name: 'unauthorized', action: 'refresh-once' },
  [CloseCode.Forbidden]: { name: 'forbidden', action: 'stop' },
  [CloseCode.AuthTimeout]: { name: 'auth timeout', action: 'backoff' },
  [CloseCode.TooManyConnections]: { name: 'too many connections', action: 'backoff' },
  [CloseCode.TokenExpired]: { name: 'token expired', action: 'refresh-now' },
  [CloseCode.RateLimited]: { name: 'rate limited', action: 'retry-after' },
});

/** The client's next step after a close with `code`; unknown 1xxx codes back off, others stop. */
export function closeCodeAction(code: number): CloseAction {
  const known = (CLOSE_CODES as Record<number, CloseCodeInfo | undefined>)[code];
  if (known) return known.action;
  return code >= 1000 && code < 2000 ? 'backoff' : 'stop';
}
