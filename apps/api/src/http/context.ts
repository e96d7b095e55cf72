import type { ParameterizedContext } from 'koa';
import type { TenantApp } from '../../../shared/src/tenants/app-directory.js';
import { ApiError } from './errors.js';

/** Per-request state set by the middleware chain (`request-context.ts`, `authenticate.ts`). */
export interface ApiState {
  requestId: string;
  /** The route template the request matches (set before authentication, so a 401 has one too). */
  route?: string;
  tenant?: TenantApp;
}

export type ApiContext = ParameterizedContext<ApiState>;

/** The authenticated app; only routes behind `authenticate` call this. */
export function tenantOf(ctx: ApiContext): TenantApp {
  const tenant = ctx.state.tenant;
  if (!tenant) throw new ApiError(401, 'missing credentials: send the asapp-api-id and asapp-api-secret headers');
  return tenant;
}
