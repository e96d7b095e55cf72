import type { TranscriptStore } from '../shared/src/ports/transcript-store.port.js';
import type { Runtime } from '../shared/src/runtime.js';
import { createTranscriptStore, describeStore } from '../shared/src/transcript-store/transcript-store.js';
import { StoreConsumer, type StoreTopics } from './src/consumer/store-consumer.js';

/**
 * The store app (SPEC §9): migrates the transcript store, then runs the batching consumer
 * that writes utterances, session events, delivery outcomes and audit records into it.
 * The only composition root of the app. `earshot start` passes the store it shares with the
 * API in embedded mode; otherwise the app opens (and closes) its own.
 */
export interface StoreApp {
  readonly describe: string;
  readonly store: TranscriptStore;
  /** Writes what is buffered now and commits it (tests; shutdown does it too). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export async function startStoreApp(
  runtime: Runtime,
  options: { store?: TranscriptStore; groupId?: string; topics?: StoreTopics; retryBaseMs?: number } = {},
): Promise<StoreApp> {
  const { config } = runtime;
  const store = options.store ?? createTranscriptStore(config, runtime.logger.child({ app: 'store' }));
  try {
    await store.migrate();
    const consumer = new StoreConsumer({
      eventLog: runtime.eventLog,
      store,
      logger: runtime.logger.child({ app: 'store' }),
      metrics: runtime.metrics,
      groupId: options.groupId,
      topics: options.topics,
      maxRecords: config.EARSHOT_STORE_BATCH_MAX_RECORDS,
      maxWaitMs: config.EARSHOT_STORE_BATCH_MAX_WAIT_MS,
      retryMaxMs: config.EARSHOT_STORE_RETRY_MAX_MS,
      retryBaseMs: options.retryBaseMs,
    });
    await consumer.start();
    return {
      describe: `${describeStore(config)}, batches of up to ${config.EARSHOT_STORE_BATCH_MAX_RECORDS} records or ${config.EARSHOT_STORE_BATCH_MAX_WAIT_MS} ms`,
      store,
      flush: () => consumer.flush(),
      stop: async () => {
        await consumer.stop();
        if (!options.store) await store.close();
      },
    };
  } catch (error) {
    if (!options.store) await store.close().catch(() => undefined);
    throw error;
  }
}
