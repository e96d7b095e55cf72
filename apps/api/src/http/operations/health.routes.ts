import { z } from 'zod';
import { eventLogReachable, PROBE_TIMEOUT_MS } from '../../../../shared/src/event-log-probe.js';
import type { EventLog } from '../../../../shared/src/ports/event-log.port.js';
import type { CallTracker } from '../../consumer/call-tracker.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';

/**
 * Liveness and readiness (SPEC §3.6). Ready means: the event log answers within 2 s, the
 * app directory has caught up (always true here: `createRuntime` returns only after it has),
 * and the call-state projection has read everything written before the node started.
 */

export const HealthResponse = z.object({ status: z.literal('ok') });
export const ReadyResponse = z.object({
  status: z.literal('ready'),
  checks: z.object({ eventLog: z.literal('ok'), appDirectory: z.literal('ok'), callState: z.literal('ok') }),
});

export function healthzRoute(): RouteSpec {
  return {
    method: 'get',
    path: '/healthz',
    operationId: 'healthz',
    summary: 'Liveness: the process is up and serving HTTP',
    tag: 'operations',
    authenticated: false,
    success: { description: 'Alive', body: { id: 'HealthResponse', schema: HealthResponse } },
    errors: [],
    handle: async (ctx) => {
      ctx.body = { status: 'ok' } satisfies z.infer<typeof HealthResponse>;
    },
  };
}

export function readyzRoute(deps: { log: EventLog; tracker: CallTracker }): RouteSpec {
  return {
    method: 'get',
    path: '/readyz',
    operationId: 'readyz',
    summary: 'Readiness: event log reachable, tenants and call state loaded',
    tag: 'operations',
    authenticated: false,
    success: { description: 'Ready to serve requests', body: { id: 'ReadyResponse', schema: ReadyResponse } },
    errors: [503],
    handle: async (ctx) => {
      const problems: string[] = [];
      if (!(await eventLogReachable(deps.log))) problems.push(`the event log did not answer within ${PROBE_TIMEOUT_MS} ms`);
      if (!deps.tracker.ready) problems.push('the call state is still being loaded from the event log');
      if (problems.length > 0) throw new ApiError(503, `not ready: ${problems.join('; ')}`, { retryAfterS: 1 });
      ctx.body = { status: 'ready', checks: { eventLog: 'ok', appDirectory: 'ok', callState: 'ok' } } satisfies z.infer<
        typeof ReadyResponse
      >;
    },
  };
}
