/** What one try to deliver a message ended with (before retries are decided). */
export interface AttemptResult {
  readonly outcome: 'delivered' | 'http_error' | 'timeout' | 'connection_error';
  readonly httpStatus: number | null;
  readonly error: string | null;
  /** Whether an opt-in retry may help: timeouts, connection errors, 5xx, 408 and 429. */
  readonly retriable: boolean;
}

/** A failure with the outcome it must be recorded as (token endpoint, connection). */
export class DeliveryFailure extends Error {
  constructor(
    readonly outcome: 'http_error' | 'timeout' | 'connection_error',
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
    this.name = 'DeliveryFailure';
  }
}

/**
 * Turns an undici/TLS/abort error into a recordable failure. Messages are the library's
 * (error codes, addresses, certificate problems): they never contain request headers, so no
 * token or secret can leak into a delivery event.
 */
export function classifyError(error: unknown, deadline: AbortSignal, what: string): DeliveryFailure {
  if (error instanceof DeliveryFailure) return error;
  const code = (error as { code?: string }).code;
  const message = (error as Error)?.message ?? String(error);
  if (deadline.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return new DeliveryFailure('timeout', `${what}: no complete response within the timeout`, true);
  return new DeliveryFailure('connection_error', `${what}: ${code ? `${code}: ` : ''}${message}`.slice(0, 500), true);
}
