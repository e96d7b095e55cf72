import { createKafkaEventLog } from '../../apps/shared/src/adapters/kafka-event-log.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';

/**
 * Where the real servers of `earshot infra up` are. `npm test` starts them before any test
 * runs; the settings are the same EARSHOT_* variables the apps read.
 */
export const testConfig = loadEarshotConfig();

export const testLogger = createLogger({ level: 'warn', name: 'test' });

/** `namespace` isolates a test's topics and groups from every other test on the shared broker. */
export function kafkaEventLog(
  partitions: number,
  namespace?: string,
  servers: { brokers?: string; schemaRegistryUrl?: string } = {},
): EventLog {
  return createKafkaEventLog({
    brokers: (servers.brokers ?? testConfig.EARSHOT_KAFKA_BROKERS).split(','),
    clientId: 'earshot-test',
    schemaRegistryUrl: servers.schemaRegistryUrl ?? testConfig.EARSHOT_SCHEMA_REGISTRY_URL,
    partitions,
    logger: testLogger,
    fetchMaxWaitMs: 50,
    heartbeatMs: 300,
    sessionTimeoutMs: 6000,
    namespace,
  });
}
