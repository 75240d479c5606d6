import { OutcomeUnknownError, StoreUnavailableError } from '@authsocket/server';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from './logger.js';

/** A refusal whose message is safe to send to the client as `{ error }`. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** body-parser's error types, answered with a message that says what to fix. */
const BODY_ERRORS: Readonly<Record<string, [number, string]>> = {
  'entity.parse.failed': [400, 'invalid JSON body'],
  'entity.too.large': [413, 'request body too large'],
  'entity.verify.failed': [400, 'invalid request body'],
  'request.aborted': [400, 'request aborted'],
  'request.size.invalid': [400, 'request body size does not match Content-Length'],
  'encoding.unsupported': [415, 'unsupported Content-Encoding'],
  'charset.unsupported': [415, 'unsupported charset: send UTF-8 JSON'],
};

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json({ error: 'not found' });
};

/** An answer the API may give for `error`: its status, extra headers and JSON body. */
export interface ErrorAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: { error: string; code?: string };
}

/** The answer for a refusal or store error any HTTP layer raises; undefined for an internal error. */
export function errorAnswer(error: unknown): ErrorAnswer | undefined {
  if (error instanceof HttpError) return { status: error.status, body: { error: error.message } };
  const bodyError = BODY_ERRORS[(error as { type?: string } | null)?.type ?? ''];
  if (bodyError) return { status: bodyError[0], body: { error: bodyError[1] } };
  // Not done (Redis or another store unreachable): safe to retry, on this node in a moment or another.
  if (error instanceof StoreUnavailableError) {
    return { status: 503, headers: { 'Retry-After': '1' }, body: { error: 'service unavailable', code: 'unavailable' } };
  }
  // Sent, but no answer: it may still be published. Retry only with the same Idempotency-Key.
  if (error instanceof OutcomeUnknownError) return { status: 504, body: { error: 'publish outcome unknown', code: 'outcome_unknown' } };
  return undefined;
}

/** body-parser's error for `type` (e.g. `entity.parse.failed`), for a layer that parses bodies itself. */
export function bodyError(type: string): Error & { type: string } {
  return Object.assign(new Error(type), { type });
}

/** The last handler: JSON errors, never internal details (those go to the log, without the body). */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    const answer = errorAnswer(error);
    if (answer) return void res.status(answer.status).set(answer.headers ?? {}).json(answer.body);
    logger.error({ method: req.method, path: req.originalUrl.split('?', 1)[0], err: String(error) }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  };
}
