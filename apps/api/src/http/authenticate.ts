import type { Middleware } from 'koa';
import type { AppDirectory } from '../../../shared/src/tenants/app-directory.js';
import type { ApiMetrics } from '../api-metrics.js';
import type { TokenBuckets } from '../domain/token-bucket.js';
import type { ApiState } from './context.js';
import { ApiError } from './errors.js';

/**
 * SPEC §2: every call-control route needs `asapp-api-id` and `asapp-api-secret`. The check
 * applies by path prefix, so a new route under these prefixes cannot forget it, and an
 * unknown route under them answers 401 before 404 (no route probing without credentials).
 *
 * Secret guessing: every attempt takes a token from the client address's bucket before the
 * secret is checked, and a success gives it back, so only failures count. With the bucket
 * empty the secret is not even checked (429), so a right guess cannot be told from a wrong
 * one. Then the tenant's own bucket (EARSHOT_API_RATE_LIMIT_PER_MINUTE) applies.
 */
// The File Exporter's download links are signed instead (`/fileexporter/v1/download/`), so only `static/` is here.
export const PROTECTED_PREFIXES = ['/mg-autotranscribe/', '/conversation/', '/fileexporter/v1/static/'] as const;
const MAX_CREDENTIAL_LENGTH = 256;

export interface AuthenticateDeps {
  readonly apps: AppDirectory;
  readonly metrics: ApiMetrics;
  readonly failuresByAddress: TokenBuckets;
  readonly requestsByTenant: TokenBuckets;
  readonly tenantLimitPerMinute: number;
}

export function authenticate(deps: AuthenticateDeps): Middleware<ApiState> {
  return async (ctx, next) => {
    if (!PROTECTED_PREFIXES.some((prefix) => ctx.path.startsWith(prefix))) return next();
    const address = ctx.ip;
    const attempt = deps.failuresByAddress.take(address);
    if (!attempt.ok) {
      deps.metrics.rateLimited.inc({ scope: 'address' });
      throw new ApiError(429, `too many failed authentications from this address; retry in ${attempt.retryAfterS} s`, {
        retryAfterS: attempt.retryAfterS,
      });
    }
    const apiId = ctx.get('asapp-api-id');
    const secret = ctx.get('asapp-api-secret');
    if (!apiId || !secret) {
      deps.metrics.authFailures.inc();
      const missing = [apiId ? null : 'asapp-api-id', secret ? null : 'asapp-api-secret'].filter(Boolean);
      throw new ApiError(401, `missing credentials: the ${missing.join(' and ')} header${missing.length > 1 ? 's are' : ' is'} required`);
    }
    const app =
      apiId.length <= MAX_CREDENTIAL_LENGTH && secret.length <= MAX_CREDENTIAL_LENGTH ? await deps.apps.authenticate(apiId, secret) : null;
    if (!app) {
      deps.metrics.authFailures.inc();
      throw new ApiError(401, 'invalid credentials: asapp-api-id and asapp-api-secret do not match an enabled app');
    }
    deps.failuresByAddress.refund(address);
    ctx.state.tenant = app;
    const request = deps.requestsByTenant.take(app.apiId);
    if (!request.ok) {
      deps.metrics.rateLimited.inc({ scope: 'tenant' });
      throw new ApiError(
        429,
        `rate limit of ${deps.tenantLimitPerMinute} requests per minute exceeded for this app; retry in ${request.retryAfterS} s`,
        { retryAfterS: request.retryAfterS },
      );
    }
    await next();
  };
}
