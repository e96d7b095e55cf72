import type { CallEvent, CallEventPayload, StreamEndReason, Track, TranscriptionStartRequested } from '../../../apps/shared/src/events.js';
import { startRequest } from '../../support/fixtures.js';

/**
 * Call events as ingest and the api write them, for tests that feed the asr consumer: the
 * payload builders give an event's type and data, `callEventMaker` adds the envelope.
 */

/** Envelopes with event ids `<prefix>0`, `<prefix>1`, ... in the order they are made. */
export function callEventMaker(prefix: string, tenantId = 'app_a') {
  let n = 0;
  const event = (callSid: string, occurredAtMs: number, payload: CallEventPayload): CallEvent => ({
    eventId: `${prefix}${n++}`,
    callSid,
    tenantId,
    occurredAtMs,
    ...payload,
  });
  /** A record for the call-events topic: keyed by Call SID, as ingest and the api write it. */
  const record = (callSid: string, occurredAtMs: number, payload: CallEventPayload) => ({
    key: callSid,
    value: event(callSid, occurredAtMs, payload),
  });
  return { event, record };
}

/** `ms` of one mu-law byte repeated: speech to the fake engine, or silence (0xff). */
export const tone = (byte: number, ms = 100): Buffer => Buffer.alloc(ms * 8, byte);

/**
 * A batch of Twilio frames at media time `ms` (20 ms frames numbered from 1). `durationMs` is
 * the payload's length unless given.
 */
export function audioChunk(
  ms: number,
  payload: Buffer,
  {
    track = 'inbound',
    streamSid = 'MZ1',
    durationMs = payload.length / 8,
  }: { track?: Track; streamSid?: string; durationMs?: number } = {},
): CallEventPayload {
  return {
    type: 'AudioChunkReceived',
    data: { streamSid, track, firstChunk: ms / 20 + 1, lastChunk: ms / 20 + durationMs / 20, timestampMs: ms, durationMs, payload },
  };
}

/** start-streaming's command, with the fixture's defaults for what `fields` leaves out. */
export const startCommand = (fields: Partial<TranscriptionStartRequested> = {}): CallEventPayload => ({
  type: 'TranscriptionStartRequested',
  data: startRequest(fields),
});

export const stopCommand = (requestId: string): CallEventPayload => ({ type: 'TranscriptionStopRequested', data: { requestId } });

export const streamStarted = (streamSid: string): CallEventPayload => ({
  type: 'StreamStarted',
  data: {
    streamSid,
    accountSid: 'AC1',
    tracks: ['inbound', 'outbound'],
    customParameters: {},
    encoding: 'audio/x-mulaw',
    sampleRate: 8000,
    channels: 1,
    ingestNode: 'n',
  },
});

export const streamEnded = (streamSid: string, reason: StreamEndReason): CallEventPayload => ({
  type: 'StreamEnded',
  data: { streamSid, reason, detail: null, framesReceived: 0, framesDropped: 0 },
});

export const dtmf = (streamSid: string, digit: string, track: Track = 'inbound'): CallEventPayload => ({
  type: 'DtmfReceived',
  data: { streamSid, track, digit },
});
