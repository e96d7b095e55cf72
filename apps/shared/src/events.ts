/**
 * Domain events carried on the event log. Each mirrors a schema in `schemas/` (the public
 * contract); `test/shared/events.unit.test.ts` round-trips a sample of every one through
 * Avro so the two cannot drift apart silently. Envelope topics carry a union in `data`,
 * which the codec turns into an emmett-style `{ type, data }` pair.
 */

export type Track = 'inbound' | 'outbound';
export type Role = 'customer' | 'agent';

// ---- earshot.call-events.v1 (key: Call SID) -------------------------------------------

export interface AudioChunkReceived {
  readonly streamSid: string;
  readonly track: Track;
  readonly firstChunk: number;
  readonly lastChunk: number;
  readonly timestampMs: number;
  readonly durationMs: number;
  readonly payload: Buffer;
}

export interface StreamStarted {
  readonly streamSid: string;
  readonly accountSid: string;
  readonly tracks: readonly Track[];
  readonly customParameters: Readonly<Record<string, string>>;
  readonly encoding: string;
  readonly sampleRate: number;
  readonly channels: number;
  readonly ingestNode: string;
}

export type StreamEndReason = 'stopped' | 'closed_without_stop' | 'replaced' | 'errored';

export interface StreamEnded {
  readonly streamSid: string;
  readonly reason: StreamEndReason;
  readonly detail: string | null;
  readonly framesReceived: number;
  readonly framesDropped: number;
}

export interface DtmfReceived {
  readonly streamSid: string;
  readonly track: Track;
  readonly digit: string;
}

export type RedactionOutput = 'redacted' | 'unredacted' | 'redacted_and_unredacted';

export interface TranscriptionStartRequested {
  readonly requestId: string;
  readonly customerId: string;
  readonly agentId: string;
  readonly language: string;
  readonly detailedToken: boolean;
  readonly audioRecordingAllowed: boolean;
  readonly redactionOutput: RedactionOutput;
  readonly inboundRole: Role;
  readonly outboundRole: Role;
  readonly customerStreamId: string;
  readonly agentStreamId: string;
}

export interface TranscriptionStopRequested {
  readonly requestId: string;
}

export type CallEventPayload =
  | { readonly type: 'AudioChunkReceived'; readonly data: AudioChunkReceived }
  | { readonly type: 'StreamStarted'; readonly data: StreamStarted }
  | { readonly type: 'StreamEnded'; readonly data: StreamEnded }
  | { readonly type: 'DtmfReceived'; readonly data: DtmfReceived }
  | { readonly type: 'TranscriptionStartRequested'; readonly data: TranscriptionStartRequested }
  | { readonly type: 'TranscriptionStopRequested'; readonly data: TranscriptionStopRequested };

export type CallEvent = {
  readonly eventId: string;
  readonly callSid: string;
  readonly tenantId: string;
  readonly occurredAtMs: number;
} & CallEventPayload;

// ---- earshot.utterances.v1 (key: Call SID) --------------------------------------------

export interface WordToken {
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
}

export interface UtteranceRecognized {
  readonly eventId: string;
  readonly utteranceId: string;
  readonly callSid: string;
  readonly tenantId: string;
  readonly streamId: string;
  readonly role: Role;
  readonly senderExternalId: string;
  readonly track: Track;
  readonly startMs: number;
  readonly endMs: number;
  readonly text: string | null;
  readonly unredactedText: string | null;
  readonly language: string;
  readonly tokens: readonly WordToken[] | null;
  readonly engine: string;
  readonly model: string;
  readonly speechEndedAtMs: number;
  readonly occurredAtMs: number;
}

// ---- earshot.sessions.v1 (key: Call SID) ----------------------------------------------

export interface SessionSummary {
  readonly role: Role;
  readonly streamId: string;
  readonly totalAudioBytes: number;
  readonly audioDurationMs: number;
  readonly streamingSeconds: number;
  readonly transcripts: number;
}

export interface TranscriptionSessionOpened {
  readonly requestId: string;
  readonly customerStreamId: string;
  readonly agentStreamId: string;
  readonly language: string;
  readonly start: TranscriptionStartRequested | null;
  /** Where the start command sits on earshot.call-events.v1 (for restoring sessions after a rebalance). */
  readonly commandPartition: number;
  readonly commandOffset: number;
  /** The start command's occurredAtMs (0: unknown): audio received before it is not transcribed. */
  readonly startRequestedAtMs: number;
}

export interface TranscriptionSessionClosed {
  readonly requestId: string | null;
  readonly reason: 'stop_requested' | 'stream_ended' | 'replayed_shutdown';
  readonly summaries: readonly SessionSummary[];
  readonly commandPartition: number;
  readonly commandOffset: number;
}

export type SessionEvent = {
  readonly eventId: string;
  readonly callSid: string;
  readonly tenantId: string;
  readonly occurredAtMs: number;
} & (
  | { readonly type: 'TranscriptionSessionOpened'; readonly data: TranscriptionSessionOpened }
  | { readonly type: 'TranscriptionSessionClosed'; readonly data: TranscriptionSessionClosed }
);

// ---- earshot.apps.v1 (compacted, key: api id) -----------------------------------------

export type AppChange =
  | { readonly type: 'AppCreated'; readonly data: { readonly name: string; readonly secretHash: string } }
  | { readonly type: 'AppSecretRotated'; readonly data: { readonly secretHash: string } }
  | { readonly type: 'AppDisabled'; readonly data: { readonly reason: string | null } }
  | { readonly type: 'AppWebhookSet'; readonly data: { readonly url: string; readonly encryptedAuth: string | null } }
  | { readonly type: 'AppTwilioAuthTokenSet'; readonly data: { readonly enabled: boolean } };

export type AppState = {
  readonly eventId: string;
  readonly apiId: string;
  readonly occurredAtMs: number;
  readonly name: string;
  readonly secretHash: string;
  readonly disabled: boolean;
  readonly webhookUrl: string | null;
  readonly encryptedWebhookAuth: string | null;
  readonly encryptedTwilioAuthToken: string | null;
} & AppChange;

// ---- earshot.deliveries.v1 (key: Call SID) --------------------------------------------

export interface DeliveryAttempted {
  readonly eventId: string;
  readonly utteranceId: string;
  readonly callSid: string;
  readonly tenantId: string;
  readonly outcome: 'delivered' | 'http_error' | 'timeout' | 'dropped' | 'connection_error';
  readonly httpStatus: number | null;
  readonly latencyMs: number;
  readonly attempt: number;
  readonly error: string | null;
  readonly occurredAtMs: number;
}

// ---- earshot.audit.v1 (key: app id) ---------------------------------------------------

export interface AuditRecorded {
  readonly eventId: string;
  readonly appId: string;
  readonly action: string;
  readonly requestId: string;
  readonly callSidHash: string | null;
  readonly clientAddressHash: string | null;
  readonly occurredAtMs: number;
}
