import type { Config } from './config.js';
import { createEventLog } from './event-log.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import type { EventLog } from './ports/event-log.port.js';
import { type AppDirectory, followAppDirectory } from './tenants/app-directory.js';
import { type CredentialBox, loadCredentialBox } from './tenants/credential-box.js';
import { loadStreamTokens, type StreamTokens } from './tenants/stream-tokens.js';
import { ALL_TOPICS } from './topics.js';

/**
 * What every app of one process shares: configuration, logs, metrics, the event log and the
 * tenant directory. Built once by the entry point (`earshot start`); apps receive it and
 * never build their own, so embedded mode runs all apps on one event log.
 */
export interface Runtime {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly eventLog: EventLog;
  readonly apps: AppDirectory;
  readonly tokens: StreamTokens;
  readonly credentials: CredentialBox;
  /** Releases what `createRuntime` opened (the directory's consumer, the event log). */
  close(): Promise<void>;
}

export async function createRuntime(
  config: Config,
  options: { name?: string; logger?: Logger; eventLog?: EventLog } = {},
): Promise<Runtime> {
  const logger = options.logger ?? createLogger({ level: config.EARSHOT_LOG_LEVEL, name: options.name ?? 'earshot' });
  const credentials = loadCredentialBox(config);
  const tokens = loadStreamTokens(config, credentials);
  const eventLog = options.eventLog ?? createEventLog(config, logger);
  await eventLog.ensureTopics(ALL_TOPICS);
  const directory = await followAppDirectory(eventLog, logger);
  return {
    config,
    logger,
    metrics: createMetricsRegistry({ app: options.name ?? 'earshot' }),
    eventLog,
    apps: directory.directory,
    tokens,
    credentials,
    close: async () => {
      await directory.stop();
      await eventLog.close();
    },
  };
}
