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

/** The last handler: JSON errors, never internal details (those go to the log, without the body). */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof HttpError) return void res.status(error.status).json({ error: error.message });
    const bodyError = BODY_ERRORS[(error as { type?: string } | null)?.type ?? ''];
    if (bodyError) return void res.status(bodyError[0]).json({ error: bodyError[1] });
    // Not done (Redis or another store unreachable): safe to retry, on this node in a moment or another.
    if (error instanceof StoreUnavailableError) {
      return void res.status(503).set('Retry-After', '1').json({ error: 'service unavailable', code: 'unavailable' });
    }
    // Sent, but no answer: it may still be published. Retry only with the same Idempotency-Key.
    if (error instanceof OutcomeUnknownError) {
      return void res.status(504).json({ error: 'publish outcome unknown', code: 'outcome_unknown' });
    }
    logger.error({ method: req.method, path: req.originalUrl.split('?', 1)[0], err: String(error) }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  };
}
