import type { Test } from 'tap';
import { startAsrApp } from '../../../apps/asr/main.js';
import { ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import type { SessionEvent, UtteranceRecognized } from '../../../apps/shared/src/events.js';
import type { LogRecord } from '../../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../../apps/shared/src/runtime.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import { testRuntime } from '../../support/runtime.js';

/** What the asr app writes, read back as it arrives: utterance and session events (a reader group of its own). */
export async function collectAsrOutputs(
  t: Test,
  runtime: Runtime,
): Promise<{ utterances: UtteranceRecognized[]; sessions: SessionEvent[] }> {
  const utterances: UtteranceRecognized[] = [];
  const sessions: SessionEvent[] = [];
  const reader = runtime.eventLog.createConsumer({ groupId: 'reader', topics: [TOPICS.utterances, TOPICS.sessions] });
  await reader.run(async (batch) => {
    for (const r of batch.records as LogRecord<UtteranceRecognized | SessionEvent>[]) {
      if (batch.topic === TOPICS.utterances.name) utterances.push(r.value as UtteranceRecognized);
      else sessions.push(r.value as SessionEvent);
    }
  });
  t.teardown(() => reader.stop());
  return { utterances, sessions };
}

/**
 * The real asr app (real model) on real Kafka, in a runtime of its own with `env`, and what it
 * writes as it arrives: for end-to-end tests that write call events themselves.
 */
export async function startRealAsr(t: Test, env: Record<string, string>) {
  const runtime = await testRuntime({ kafka: true, env });
  t.teardown(() => runtime.cleanup());
  await ensureModels(runtime.config.EARSHOT_MODELS_DIR);
  await runtime.eventLog.ensureTopics([TOPICS.callEvents, TOPICS.utterances, TOPICS.sessions]);
  const asr = await startAsrApp(runtime);
  t.teardown(() => asr.stop());
  return { runtime, ...(await collectAsrOutputs(t, runtime)) };
}
