import { Counter, Gauge, Histogram, type Registry } from '../../shared/src/metrics.js';

/**
 * The API's instruments on the process registry. Label values are bounded: `route` is the
 * route template (or "unmatched"), never the raw path, and no tenant id is a label.
 * Get-or-create, so a second API on the same runtime (tests) reuses them.
 */
export interface ApiMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'method' | 'route'>;
  readonly rateLimited: Counter<'scope'>;
  readonly authFailures: Counter<never>;
  readonly commands: Counter<'command'>;
  readonly auditFailures: Counter<never>;
  readonly callsTracked: Gauge<never>;
}

export function apiMetrics(registry: Registry): ApiMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    requests:
      existing('earshot_api_requests_total') ??
      new Counter({
        name: 'earshot_api_requests_total',
        help: 'HTTP requests answered by the API, by method, route template and status.',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      }),
    latency:
      existing('earshot_api_request_duration_seconds') ??
      new Histogram({
        name: 'earshot_api_request_duration_seconds',
        help: 'Time from request received to response handed to Node, by method and route template.',
        labelNames: ['method', 'route'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
    rateLimited:
      existing('earshot_api_rate_limited_total') ??
      new Counter({
        name: 'earshot_api_rate_limited_total',
        help: 'Requests refused with 429: scope "tenant" (per-app limit) or "address" (failed authentications per client address).',
        labelNames: ['scope'],
        registers: [registry],
      }),
    authFailures:
      existing('earshot_api_auth_failures_total') ??
      new Counter({ name: 'earshot_api_auth_failures_total', help: 'Requests refused with 401.', registers: [registry] }),
    commands:
      existing('earshot_api_commands_total') ??
      new Counter({
        name: 'earshot_api_commands_total',
        help: 'Transcription commands published to the event log, by command (start, stop).',
        labelNames: ['command'],
        registers: [registry],
      }),
    auditFailures:
      existing('earshot_api_audit_failures_total') ??
      new Counter({
        name: 'earshot_api_audit_failures_total',
        help: 'Audit records that could not be written after the audited action took effect (logged at error level).',
        registers: [registry],
      }),
    callsTracked:
      existing('earshot_api_calls_tracked') ??
      new Gauge({ name: 'earshot_api_calls_tracked', help: 'Calls in the API node call-state projection.', registers: [registry] }),
  };
}
