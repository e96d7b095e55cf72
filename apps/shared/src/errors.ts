/**
 * One root error for the whole project. Callers match on `code`, never on `instanceof`
 * (codes survive process boundaries and Kafka, classes do not). Context goes in `fields`,
 * not in the message, so logs can index it.
 */
export type ErrorCode =
  | 'EARSHOT_CONFIG_INVALID'
  | 'EARSHOT_SCHEMA_INVALID'
  | 'EARSHOT_SCHEMA_INCOMPATIBLE'
  | 'EARSHOT_SCHEMA_UNKNOWN'
  | 'EARSHOT_TOPIC_UNKNOWN'
  | 'EARSHOT_EVENT_LOG_CLOSED'
  | 'EARSHOT_EVENT_LOG_UNAVAILABLE'
  | 'EARSHOT_EVENT_LOG_REFUSED'
  | 'EARSHOT_INFRA_PREREQUISITE_MISSING'
  | 'EARSHOT_INFRA_START_FAILED'
  | 'EARSHOT_TOKEN_INVALID'
  | 'EARSHOT_APP_NOT_FOUND'
  | 'EARSHOT_ASR_OVERLOADED'
  | 'EARSHOT_STORE_FAILED'
  | 'EARSHOT_EXPORT_FAILED'
  | 'EARSHOT_DEMO_FAILED'
  | 'EARSHOT_USAGE';

export class EarshotError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly fields: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { retriable?: boolean; fields?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EarshotError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.fields = Object.freeze({ ...(options.fields ?? {}) });
  }
}

export function isEarshotError(error: unknown, code?: ErrorCode): error is EarshotError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'EarshotError' &&
    (code === undefined || (error as { code?: unknown }).code === code)
  );
}
