import type { CallEvent } from '../../../apps/shared/src/events.js';
import type { Runtime } from '../../../apps/shared/src/runtime.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';

/**
 * Stands in for the asr consumer in API unit tests: answers every stop command with a
 * TranscriptionSessionClosed carrying a fixed summary, on the same event log. The real asr
 * consumer answering a real API is covered end to end in test/e2e/.
 */
export const STAND_IN_SUMMARY = { totalAudioBytes: 16000, audioDurationMs: 2000, streamingSeconds: 2.5, transcripts: 3 };

export async function startAsrStandIn(runtime: Runtime): Promise<{ stop(): Promise<void> }> {
  const consumer = runtime.eventLog.createConsumer({
    groupId: `asr-stand-in-${Math.random()}`,
    topics: [TOPICS.callEvents],
    fromBeginning: false,
  });
  await consumer.run(async (batch) => {
    for (const record of batch.records) {
      const event = record.value as CallEvent;
      if (event.type !== 'TranscriptionStopRequested') continue;
      await runtime.eventLog.produce(TOPICS.sessions, [
        {
          key: event.callSid,
          value: {
            eventId: `closed-${event.data.requestId}`,
            callSid: event.callSid,
            tenantId: event.tenantId,
            occurredAtMs: Date.now(),
            type: 'TranscriptionSessionClosed',
            data: {
              requestId: event.data.requestId,
              reason: 'stop_requested',
              summaries: [
                { role: 'customer', streamId: 'x', ...STAND_IN_SUMMARY },
                { role: 'agent', streamId: 'y', ...STAND_IN_SUMMARY, transcripts: 1 },
              ],
              commandPartition: record.partition,
              commandOffset: record.offset,
            },
          },
        },
      ]);
    }
  });
  return { stop: () => consumer.stop() };
}
