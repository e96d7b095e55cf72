import type { Registry } from '../../../../shared/src/metrics.js';
import type { RouteSpec } from '../route.js';

/** Prometheus text exposition of the process registry (every app of the process, in embedded mode). */
export function metricsRoute(registry: Registry): RouteSpec {
  return {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics (text exposition format)',
    tag: 'operations',
    authenticated: false,
    success: { description: 'Metrics', body: { contentType: 'text/plain' } },
    errors: [500],
    handle: async (ctx) => {
      ctx.body = await registry.metrics();
      ctx.type = registry.contentType;
    },
  };
}
