import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiKeyMatcher } from './api-key.js';
import type { ApiInput, ApiRoute } from './api-routes.js';
import { sendJson } from './http-api.js';
import { bodyError, errorAnswer } from './http-errors.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

export interface ApiFastPathOptions {
  readonly apiKey: string;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/** Takes the request and answers it (true), or leaves it untouched for Express (false). */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

const PREFIX = '/api';
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);
const NO_QUERY: Readonly<Record<string, unknown>> = Object.freeze({});

interface CompiledRoute {
  readonly route: ApiRoute;
  /** The path's segments; a `:name` segment is a parameter. */
  readonly segments: readonly string[];
}

/**
 * The hot path of the publish endpoints, on node:http before Express: Express's router stack and
 * body-parser cost ~8x node:http's own per-request work, and a backend publishing thousands of
 * messages a second pays it on every one. It takes only what it fully understands: an authorized
 * `POST /api/<route>` with an exact path, `Content-Type: application/json`, no Content-Encoding and a
 * Content-Length within the route's limit, while debug logging (the request log) is off. Everything
 * else, refusals of the key included, goes to Express unchanged. The route itself (validation, the
 * publish, the answer) is the one `ApiRoute.handle` both layers call; the errors are `errorAnswer`'s.
 */
export function createApiFastPath(routes: readonly ApiRoute[], { apiKey, metrics, logger }: ApiFastPathOptions): FastPath {
  const posts: CompiledRoute[] = routes
    .filter((route) => route.method === 'POST')
    .map((route) => ({ route, segments: route.path.split('/').slice(1) }));
  const authorized = apiKeyMatcher(apiKey);
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'POST' || url === undefined || !url.startsWith(`${PREFIX}/`) || url.includes('?')) return false;
    const { headers } = req;
    const length = Number(headers['content-length']);
    if (!JSON_TYPES.has(headers['content-type']?.toLowerCase() ?? '') || headers['content-encoding'] !== undefined) return false;
    if (!(length > 0) || logger.isLevelEnabled('debug')) return false;
    const match = matchRoute(posts, url.slice(PREFIX.length));
    if (match === undefined || length > match.route.bodyLimit || !authorized(headers.authorization)) return false;
    const { route, params } = match;
    const answer = (status: number, body: unknown, extra?: Readonly<Record<string, string>>) => {
      res.statusCode = status;
      if (extra) for (const [name, value] of Object.entries(extra)) res.setHeader(name, value);
      sendJson(res, body);
      metrics.observeApiRequest(route.path, status);
    };
    const fail = (error: unknown) => {
      const known = errorAnswer(error);
      if (known) return answer(known.status, known.body, known.headers);
      logger.error({ method: 'POST', path: url, err: String(error) }, 'request failed');
      answer(500, { error: 'internal error' });
    };
    readJson(req, (error, body) => {
      if (error) return fail(error);
      const input: ApiInput = { params, body, query: NO_QUERY, header: (name) => headerOf(req, name) };
      let result: unknown;
      try {
        result = route.handle(input);
      } catch (thrown) {
        return fail(thrown);
      }
      Promise.resolve(result).then((value) => answer(200, value), fail);
    });
    return true;
  };
}

function matchRoute(routes: readonly CompiledRoute[], path: string): { route: ApiRoute; params: Record<string, string> } | undefined {
  const parts = path.split('/').slice(1);
  for (const { route, segments } of routes) {
    if (segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < segments.length && matched; i++) {
      const segment = segments[i] as string;
      const part = parts[i] as string;
      if (segment.startsWith(':')) {
        const value = decode(part);
        if (value === undefined || value.length === 0) return undefined; // Express's answer, not ours
        params[segment.slice(1)] = value;
      } else {
        matched = segment === part;
      }
    }
    if (matched) return { route, params };
  }
  return undefined;
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The body as JSON, strict as `express.json()` is (an object or an array, else `entity.parse.failed`). */
function readJson(req: IncomingMessage, done: (error: Error | undefined, body?: unknown) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  // A client gone mid-body: nobody to answer.
  req.on('error', () => chunks.splice(0));
  req.on('end', () => {
    const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8');
    const first = text.trimStart()[0];
    if (first !== '{' && first !== '[') return done(bodyError('entity.parse.failed'));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return done(bodyError('entity.parse.failed'));
    }
    done(undefined, body);
  });
}
