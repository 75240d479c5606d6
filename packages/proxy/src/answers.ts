import { type ErrorCode, isPlainObject, LIMITS } from '@authsocket/protocol';
import { type ConnectResult, HandlerError, type Verdict } from '@authsocket/server';
import { InvalidAnswer } from './endpoint.js';

// What each event's 2xx JSON answer means for the gateway's core. A parser returns the port's value,
// or a `HandlerError` the proxy throws (a refusal is a valid answer: the request itself went fine),
// and throws `InvalidAnswer` for a shape the contract does not have. Unknown keys are ignored, so a
// backend may send more than this version reads.

/** The error codes a backend may give an rpc refusal (`unavailable` is a 5xx; `rate_limited` needs `retryAfter`). */
const RPC_ERROR_CODES: readonly ErrorCode[] = ['rejected', 'forbidden', 'not_found', 'bad_request'];

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `'${value.slice(0, 32)}'` : typeof value === 'object' ? 'an object' : String(value);
}

/** `answer.error` as an object, or undefined when absent. */
function refusal(answer: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!Object.hasOwn(answer, 'error')) return undefined;
  if (!isPlainObject(answer.error)) throw new InvalidAnswer(`'error' must be an object, got ${describe(answer.error)}`);
  return answer.error;
}

function optionalString(where: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new InvalidAnswer(`'${where}' must be a string, got ${describe(value)}`);
}

/** `connect`/`refresh`: `{}`, `{data?, topics?}`, or `{error: {code: 4000-4999, reason?}}`. */
export function connectAnswer(answer: Record<string, unknown>): ConnectResult | HandlerError {
  const error = refusal(answer);
  if (error !== undefined) {
    const { code } = error;
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 4000 || code > 4999) {
      throw new InvalidAnswer(`'error.code' must be a close code 4000-4999, got ${describe(code)}`);
    }
    const reason = optionalString('error.reason', error.reason) ?? 'forbidden';
    return new HandlerError('forbidden', reason, { closeCode: code });
  }
  const { data, topics } = answer;
  if (topics !== undefined) {
    const valid =
      Array.isArray(topics) && topics.every((topic) => typeof topic === 'string' && topic.length > 0 && topic.length <= LIMITS.topicLength);
    if (!valid) throw new InvalidAnswer(`'topics' must be an array of topics (1-${LIMITS.topicLength} characters)`);
  }
  return {
    ...(data === undefined ? {} : { data }),
    ...(topics === undefined ? {} : { topics: topics as string[] }),
  };
}

/**
 * `subscribe` and `publish`: `{}` allows (a publish as sent), `{data}` allows with `data` (the
 * subscribe ack's, or the payload published instead), `{error: {message?, data?}}` denies (the
 * client gets `error {code: 'forbidden', data}`).
 */
export function topicAnswer(answer: Record<string, unknown>): Verdict {
  const error = refusal(answer);
  if (error !== undefined) {
    optionalString('error.message', error.message);
    return error.data === undefined ? false : { allow: false, data: error.data };
  }
  return Object.hasOwn(answer, 'data') ? { allow: true, data: answer.data } : true;
}

/** `rpc`: `{result}` is the client's `result`; `{error: {message?, data?, code?}}` its `error` (default code `rejected`). */
export function rpcAnswer(answer: Record<string, unknown>): { readonly result: unknown } | HandlerError {
  const error = refusal(answer);
  if (error !== undefined) {
    const message = optionalString('error.message', error.message) ?? 'rpc rejected';
    const code = error.code ?? 'rejected';
    if (!RPC_ERROR_CODES.includes(code as ErrorCode)) {
      throw new InvalidAnswer(`'error.code' must be one of ${RPC_ERROR_CODES.join(', ')}, got ${describe(code)}`);
    }
    return new HandlerError(code as ErrorCode, message, error.data === undefined ? {} : { data: error.data });
  }
  if (!Object.hasOwn(answer, 'result')) throw new InvalidAnswer("an rpc answer has 'result' or 'error'");
  return { result: answer.result };
}
