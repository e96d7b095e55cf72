import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedEventLog } from '../../apps/shared/src/adapters/embedded-event-log.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { createRuntime, type Runtime } from '../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { kafkaEventLog } from './infra.js';

/**
 * A Runtime for tests: embedded (in-memory log, temp data dir) or on the real Kafka broker
 * and registry of `earshot infra`. `env` overrides EARSHOT_* settings, validated as in
 * production. Call `cleanup()` in a teardown.
 */
export async function testRuntime(
  options: { kafka?: boolean; env?: Record<string, string> } = {},
): Promise<Runtime & { cleanup(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-test-'));
  const env: Record<string, string> = {
    EARSHOT_DATA_DIR: dataDir,
    EARSHOT_LOG_LEVEL: 'warn',
    ...(options.kafka
      ? {
          EARSHOT_MODE: 'distributed',
          EARSHOT_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
          EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
          // Topics and groups of their own on the shared broker: parallel test files never meet.
          EARSHOT_KAFKA_NAMESPACE: `test-${Math.random().toString(36).slice(2, 10)}`,
        }
      : {}),
    ...options.env,
  };
  const config = loadEarshotConfig({ env });
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'test' });
  const eventLog = options.kafka
    ? kafkaEventLog(config.EARSHOT_TOPIC_PARTITIONS, config.EARSHOT_KAFKA_NAMESPACE, {
        brokers: options.env?.EARSHOT_KAFKA_BROKERS,
        schemaRegistryUrl: options.env?.EARSHOT_SCHEMA_REGISTRY_URL,
      })
    : createEmbeddedEventLog({ dataDir: null, partitions: config.EARSHOT_TOPIC_PARTITIONS, logger, pollIntervalMs: 50 });
  const runtime = await createRuntime(config, { logger, eventLog, name: 'test' });
  return {
    ...runtime,
    cleanup: async () => {
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates an app (tenant) and waits until the runtime's directory knows it. */
export async function createTestApp(runtime: Runtime, name = 'test tenant', options: { twilioAuthToken?: string } = {}) {
  const created = await new AppAdmin(runtime.eventLog, runtime.credentials).create({ name, ...options });
  const deadline = Date.now() + 10_000;
  while (!runtime.apps.get(created.apiId)) {
    if (Date.now() > deadline) throw new Error('the app never reached the directory');
    await new Promise((r) => setTimeout(r, 20));
  }
  return created;
}
