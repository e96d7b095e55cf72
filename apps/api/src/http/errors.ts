import type { Middleware } from 'koa';
import { isEarshotError } from '../../../shared/src/errors.js';
import type { Logger } from '../../../shared/src/logger.js';
import type { ApiContext, ApiState } from './context.js';

/**
 * The error shape of SPEC §3.6: `{"error": {"requestId", "code", "message"}}`, where `code`
 * is the HTTP status plus "-01". Handlers throw `ApiError`; `errorHandler` is the one place
 * that turns anything thrown into a response, and the only one that decides what a 5xx says
 * (never the internal error: it is logged with the request id instead).
 */
export const ERROR_STATUSES = [400, 401, 403, 404, 409, 413, 422, 429, 500, 503] as const;
export type ErrorStatus = (typeof ERROR_STATUSES)[number];
export const ERROR_CODES = ERROR_STATUSES.map((status) => `${status}-01` as const);
export type ErrorCode = (typeof ERROR_CODES)[number];

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly options: { readonly retryAfterS?: number; readonly allow?: readonly string[] } = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  readonly error: { readonly requestId: string; readonly code: ErrorCode; readonly message: string };
}

export function errorBody(requestId: string, status: ErrorStatus, message: string): ErrorBody {
  return { error: { requestId, code: `${status}-01`, message } };
}

export function sendError(ctx: ApiContext, error: ApiError): void {
  ctx.status = error.status;
  ctx.body = errorBody(ctx.state.requestId, error.status, error.message);
  if (error.options.retryAfterS !== undefined) ctx.set('retry-after', String(error.options.retryAfterS));
  if (error.options.allow) ctx.set('allow', error.options.allow.join(', '));
}

export function errorHandler(logger: Logger): Middleware<ApiState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (thrown) {
      const error = toApiError(thrown);
      // What a 5xx hides from the client goes to the log, under the request id the client was given.
      if (!(thrown instanceof ApiError))
        logger.error({ err: thrown, requestId: ctx.state.requestId, status: error.status }, 'api.request_failed');
      sendError(ctx, error);
    }
  };
}

function toApiError(thrown: unknown): ApiError {
  if (thrown instanceof ApiError) return thrown;
  if (
    isEarshotError(thrown, 'EARSHOT_EVENT_LOG_UNAVAILABLE') ||
    isEarshotError(thrown, 'EARSHOT_EVENT_LOG_CLOSED') ||
    (isEarshotError(thrown) && thrown.retriable)
  ) {
    return new ApiError(503, 'the event log is unavailable; retry shortly', { retryAfterS: 1 });
  }
  return new ApiError(500, 'internal error; quote the request id when reporting it');
}
