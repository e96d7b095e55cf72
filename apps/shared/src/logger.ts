import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (pino). Secrets never reach a log line: these paths are censored
 * wherever they appear, as a safety net behind not logging them in the first place.
 */
const REDACTED_PATHS = [
  'apiSecret',
  '*.apiSecret',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers["asapp-api-secret"]',
  '*.headers["asapp-api-secret"]',
  'token',
  '*.token',
];

export function createLogger(options: { level: string; name: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { app: options.name },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination as pino.DestinationStream | undefined,
  );
}
