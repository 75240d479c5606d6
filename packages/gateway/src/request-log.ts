import type { RequestHandler } from 'express';
import type { Logger } from './logger.js';

/**
 * One debug line per HTTP request: method, path (never the query string, which can carry a
 * `?ticket=`), status and duration. Headers are never logged.
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    // Off below debug (production's info): no timer and no listener per request.
    if (!logger.isLevelEnabled('debug')) return next();
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const path = req.originalUrl.split('?', 1)[0];
      logger.debug({ method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'http request');
    });
    next();
  };
}
