import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../../../shared/src/logger.js';
import type { ApiMetrics } from '../api-metrics.js';
import { type AuthenticateDeps, authenticate } from './authenticate.js';
import type { ApiState } from './context.js';
import { ApiError, errorHandler } from './errors.js';
import { jsonBody } from './json-body.js';
import { requestContext } from './request-context.js';
import type { RouteSpec } from './route.js';

/**
 * The Koa application: request id, logs and metrics → error shape → authentication and rate
 * limits (by path prefix) → routes → 404 in the error shape. A known path with the wrong
 * method is also a 404 (the spec's codes have no 405), with an Allow header naming the right one.
 */
export function createKoaApp(deps: {
  routes: readonly RouteSpec[];
  logger: Logger;
  metrics: ApiMetrics;
  auth: AuthenticateDeps;
}): Koa<ApiState> {
  const app = new Koa<ApiState>({ proxy: false });
  // Errors never reach Koa's default handler (errorHandler answers them); this catches the rest (socket errors).
  app.on('error', (error: unknown) => deps.logger.debug({ err: error }, 'api.koa_error'));
  const router = new Router<ApiState>();
  for (const route of deps.routes) {
    const chain = route.requestBody ? [jsonBody(), route.handle] : [route.handle];
    router[route.method](route.path, ...chain);
  }
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorHandler(deps.logger));
  app.use(async (ctx, next) => {
    const layer = router.match(ctx.path, ctx.method).pathAndMethod.find((l) => l.methods.length > 0);
    if (layer && typeof layer.path === 'string') ctx.state.route = layer.path;
    await next();
  });
  app.use(authenticate(deps.auth));
  app.use(router.routes());
  app.use(async (ctx) => {
    const allowed = router.match(ctx.path, ctx.method).path.flatMap((layer) => layer.methods);
    if (allowed.length > 0) {
      throw new ApiError(404, `${ctx.method} is not supported on ${ctx.path}; use ${[...new Set(allowed)].join(' or ')}`, {
        allow: [...new Set(allowed)],
      });
    }
    throw new ApiError(404, `no route ${ctx.method} ${ctx.path.slice(0, 200)}`);
  });
  return app;
}
