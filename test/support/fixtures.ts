import type { TranscriptionStartRequested } from '../../apps/shared/src/events.js';

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
