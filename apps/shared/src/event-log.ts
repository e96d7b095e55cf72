import { resolve } from 'node:path';
import { createEmbeddedEventLog } from './adapters/embedded-event-log.js';
import { createKafkaEventLog } from './adapters/kafka-event-log.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { EventLog } from './ports/event-log.port.js';

/** Picks the event-log adapter for the configured mode. Only entry points call this. */
export function createEventLog(config: Config, logger: Logger): EventLog {
  if (config.EARSHOT_MODE === 'embedded') {
    return createEmbeddedEventLog({
      dataDir: resolve(config.EARSHOT_DATA_DIR),
      partitions: config.EARSHOT_TOPIC_PARTITIONS,
      logger,
    });
  }
  return createKafkaEventLog({
    brokers: config.EARSHOT_KAFKA_BROKERS.split(','),
    clientId: config.EARSHOT_KAFKA_CLIENT_ID,
    schemaRegistryUrl: config.EARSHOT_SCHEMA_REGISTRY_URL,
    partitions: config.EARSHOT_TOPIC_PARTITIONS,
    logger,
    fetchMaxWaitMs: config.EARSHOT_KAFKA_FETCH_MAX_WAIT_MS,
    heartbeatMs: config.EARSHOT_KAFKA_HEARTBEAT_MS,
    sessionTimeoutMs: config.EARSHOT_KAFKA_SESSION_TIMEOUT_MS,
    namespace: config.EARSHOT_KAFKA_NAMESPACE,
  });
}
