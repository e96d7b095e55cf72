import type { Config } from '../../../shared/src/config.js';
import { createEventLog } from '../../../shared/src/event-log.js';
import { createLogger } from '../../../shared/src/logger.js';
import { ALL_TOPICS } from '../../../shared/src/topics.js';
import { parseOptions } from '../args.js';

const USAGE = `Usage: earshot start [--mode embedded|distributed]

Runs the gateway. Embedded mode (the default) runs every app in this one process with an
in-process event log and keeps its state under EARSHOT_DATA_DIR (default ./data): no servers
needed. Distributed mode uses Kafka (EARSHOT_KAFKA_BROKERS) and the schema registry
(EARSHOT_SCHEMA_REGISTRY_URL); 'earshot infra up' runs both locally.
Stop with Ctrl-C: the gateway finishes in-flight work and exits.`;

export async function startCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values } = parseOptions(argv, { mode: { type: 'string' } }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const config = { ...loadConfig() };
  if (values.mode !== undefined) {
    if (values.mode !== 'embedded' && values.mode !== 'distributed') {
      console.error(`earshot: --mode must be embedded or distributed, not '${values.mode}'`);
      return 2;
    }
    config.EARSHOT_MODE = values.mode;
  }
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'earshot' });
  const eventLog = createEventLog(config, logger);
  await eventLog.ensureTopics(ALL_TOPICS);
  const where = config.EARSHOT_MODE === 'embedded' ? `data in ${config.EARSHOT_DATA_DIR}` : `Kafka at ${config.EARSHOT_KAFKA_BROKERS}`;
  console.log(`Earshot is running in ${config.EARSHOT_MODE} mode (${where}).`);
  console.log('Event log ready with topics:');
  for (const topic of ALL_TOPICS) console.log(`  ${topic.name}`);
  console.log('No apps yet: the ingest and API apps arrive with the next issues. Press Ctrl-C to stop.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('shutting down');
  await eventLog.close();
  return 0;
}
