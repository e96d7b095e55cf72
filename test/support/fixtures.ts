import { createLocalRecordingStore, recordingsDir } from '../../apps/shared/src/adapters/local-recording-store.js';
import { writeWavPcm16 } from '../../apps/shared/src/audio/wav.js';
import type { Config } from '../../apps/shared/src/config.js';
import type { TranscriptionStartRequested } from '../../apps/shared/src/events.js';
import type { RecordingInfo } from '../../apps/shared/src/ports/recording-store.port.js';

/** A start-streaming command with the SPEC §3.2 defaults; tests name only what matters to them. */
export function startRequest(fields: Partial<TranscriptionStartRequested> = {}): TranscriptionStartRequested {
  return {
    requestId: 'req-start',
    customerId: 'customer-1',
    agentId: 'agent-1',
    language: 'en-US',
    detailedToken: false,
    audioRecordingAllowed: false,
    redactionOutput: 'redacted',
    inboundRole: 'customer',
    outboundRole: 'agent',
    customerStreamId: '00000000-0000-4000-8000-000000000001',
    agentStreamId: '00000000-0000-4000-8000-000000000002',
    ...fields,
  };
}

/** A 100 ms stereo recording of `callSid` for `tenantId`, in the recordings directory of `config` (what the API serves). */
export function putTestRecording(config: Config, tenantId: string, callSid: string): Promise<RecordingInfo> {
  return createLocalRecordingStore(recordingsDir(config)).put(
    tenantId,
    {
      callSid,
      customerStreamId: '00000000-0000-4000-8000-000000000001',
      agentStreamId: '00000000-0000-4000-8000-000000000002',
      durationMs: 100,
      mediaStartMs: 0,
      complete: true,
      truncated: false,
      createdAtMs: Date.now(),
    },
    writeWavPcm16(8000, [new Int16Array(800), new Int16Array(800)]),
  );
}
