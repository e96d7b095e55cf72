import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../../../shared/src/logger.js';
import type { ApiMetrics } from '../api-metrics.js';
import type { ApiState } from './context.js';

/**
 * Outermost middleware: gives every request an id (a caller's sane `x-request-id` is kept,
 * so ids can follow a request across systems; anything else is replaced by a UUID), sets it
 * on every response, and afterwards writes one log line and the metrics. The log line never
 * holds a header value other than the request id, and never a body.
 */
export const REQUEST_ID_HEADER = 'x-request-id';
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContext(logger: Logger, metrics: ApiMetrics): Middleware<ApiState> {
  return async (ctx, next) => {
    const startedAt = process.hrtime.bigint();
    const incoming = ctx.get(REQUEST_ID_HEADER);
    const requestId = SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set(REQUEST_ID_HEADER, requestId);
    ctx.set('cache-control', 'no-store');
    ctx.set('x-content-type-options', 'nosniff');
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      // The route template bounds label cardinality; raw paths would not.
      const route = ctx.state.route ?? 'unmatched';
      const status = ctx.status;
      metrics.requests.inc({ method: ctx.method, route, status: String(status) });
      metrics.latency.observe({ method: ctx.method, route }, seconds);
      const line = {
        requestId,
        appId: ctx.state.tenant?.apiId ?? null,
        method: ctx.method,
        route,
        status,
        latencyMs: Math.round(seconds * 1e6) / 1e3,
      };
      if (status >= 500) logger.warn(line, 'api.request');
      else logger.info(line, 'api.request');
    }
  };
}
