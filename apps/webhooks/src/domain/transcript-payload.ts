import type { UtteranceRecognized } from '../../../shared/src/events.js';

/**
 * The JSON POSTed for every utterance (SPEC §8), in the shape of ASAPP AutoTranscribe's
 * real-time "transcript" message, field for field:
 *
 *   { "type": "transcript", "externalConversationId": <Call SID>, "streamId": <role's stream id>,
 *     "sender": { "externalId": <customerId|agentId of start-streaming>, "role": "customer"|"agent" },
 *     "autotranscribeResponse": { "message": "transcript", "start": <ms>, "end": <ms>,
 *                                 "utterance": [ { "text": <text> } ] } }
 *
 * Choices: start/end are ms from the start of the media stream (as in the event); the text is
 * the redacted one, or the unredacted one when the session asked only for that
 * (`redactionOutput: "unredacted"`); nothing else is added to the body (language, tokens and
 * ids stay on Kafka), so a receiver written for ASAPP parses it unchanged. The utterance id
 * travels in the `earshot-utterance-id` header for receivers that deduplicate.
 */
export interface TranscriptMessage {
  readonly type: 'transcript';
  readonly externalConversationId: string;
  readonly streamId: string;
  readonly sender: { readonly externalId: string; readonly role: 'customer' | 'agent' };
  readonly autotranscribeResponse: {
    readonly message: 'transcript';
    readonly start: number;
    readonly end: number;
    readonly utterance: readonly { readonly text: string }[];
  };
}

export function transcriptMessage(event: UtteranceRecognized): TranscriptMessage {
  return {
    type: 'transcript',
    externalConversationId: event.callSid,
    streamId: event.streamId,
    sender: { externalId: event.senderExternalId, role: event.role },
    autotranscribeResponse: {
      message: 'transcript',
      start: event.startMs,
      end: event.endMs,
      utterance: [{ text: event.text ?? event.unredactedText ?? '' }],
    },
  };
}
