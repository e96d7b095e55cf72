import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { startApi } from '../../apps/api/main.js';
import { startAsrApp } from '../../apps/asr/main.js';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { startIngest } from '../../apps/ingest/main.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { type CorpusManifest, generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { createTestApp, testRuntime } from '../support/runtime.js';

/**
 * The whole gateway in this process (ingest, api, asr with the real model) over a test
 * runtime (embedded log, or real Kafka and registry), plus the generated speech corpus.
 */
export interface Gateway {
  readonly runtime: Runtime;
  readonly apiUrl: string;
  readonly tenant: { apiId: string; apiSecret: string };
  readonly utterances: LogRecord<UtteranceRecognized>[];
  readonly corpus: CorpusManifest;
  audio(path: string): Uint8Array;
}

export async function startGateway(t: Test, options: { kafka?: boolean; env?: Record<string, string> } = {}): Promise<Gateway> {
  const corpus = generateTestAudio();
  const runtime = await testRuntime({ kafka: options.kafka, env: { EARSHOT_API_PORT: '0', EARSHOT_INGEST_PORT: '0', ...options.env } });
  t.teardown(() => runtime.cleanup());
  await ensureModels(runtime.config.EARSHOT_MODELS_DIR);
  const asr = await startAsrApp(runtime);
  t.teardown(() => asr.stop());
  const ingest = await startIngest(runtime);
  t.teardown(() => ingest.stop());
  // The API hands out stream URLs pointing at the ingest node we just started.
  const api = await startApi({ ...runtime, config: { ...runtime.config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
  t.teardown(() => api.stop());
  const tenant = await createTestApp(runtime, 'e2e tenant');
  const utterances: LogRecord<UtteranceRecognized>[] = [];
  const consumer = runtime.eventLog.createConsumer({ groupId: `e2e-${Math.random()}`, topics: [TOPICS.utterances], fromBeginning: false });
  await consumer.run(async (batch) => {
    utterances.push(...(batch.records as LogRecord<UtteranceRecognized>[]));
  });
  t.teardown(() => consumer.stop());
  return { runtime, apiUrl: api.url, tenant, utterances, corpus, audio: (path) => new Uint8Array(readFileSync(path)) };
}
