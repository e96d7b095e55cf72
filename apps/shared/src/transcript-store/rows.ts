import type { AuditRecorded, DeliveryAttempted, Role, SessionEvent, UtteranceRecognized } from '../events.js';
import type { StoredUtterance } from '../ports/transcript-store.port.js';

/**
 * Events → flat table rows (snake_case, the column names of docs/sql.md), shared by the
 * ClickHouse and the embedded adapter so both store exactly the same thing.
 * `created_at` is whole seconds (the DateTime column that partitions by day).
 */

export interface UtteranceRow {
  tenant_id: string;
  call_sid: string;
  start_ms: number;
  utterance_id: string;
  event_id: string;
  stream_id: string;
  role: string;
  sender_external_id: string;
  track: string;
  end_ms: number;
  text: string;
  language: string;
  engine: string;
  model: string;
  speech_ended_at_ms: number;
  occurred_at_ms: number;
  created_at: number;
  stored_at_ms: number;
}

/**
 * The text the API and the feed show: the redacted text when redaction was on for that part
 * of the call ("redacted" or "redacted_and_unredacted"), the plain text only when the
 * session asked for "unredacted". The other variant is not stored.
 */
export function displayText(u: UtteranceRecognized): string {
  return u.text ?? u.unredactedText ?? '';
}

export function utteranceRow(u: UtteranceRecognized, storedAtMs: number): UtteranceRow {
  return {
    tenant_id: u.tenantId,
    call_sid: u.callSid,
    start_ms: u.startMs,
    utterance_id: u.utteranceId,
    event_id: u.eventId,
    stream_id: u.streamId,
    role: u.role,
    sender_external_id: u.senderExternalId,
    track: u.track,
    end_ms: u.endMs,
    text: displayText(u),
    language: u.language,
    engine: u.engine,
    model: u.model,
    speech_ended_at_ms: u.speechEndedAtMs,
    occurred_at_ms: u.occurredAtMs,
    created_at: Math.floor(u.occurredAtMs / 1000),
    stored_at_ms: storedAtMs,
  };
}

export interface SessionRow {
  tenant_id: string;
  call_sid: string;
  occurred_at_ms: number;
  event_id: string;
  type: string;
  request_id: string;
  reason: string;
  customer_stream_id: string;
  agent_stream_id: string;
  language: string;
  summary_roles: string[];
  summary_stream_ids: string[];
  summary_audio_ms: number[];
  summary_transcripts: number[];
  created_at: number;
  stored_at_ms: number;
}

export function sessionRow(e: SessionEvent, storedAtMs: number): SessionRow {
  const base = {
    tenant_id: e.tenantId,
    call_sid: e.callSid,
    occurred_at_ms: e.occurredAtMs,
    event_id: e.eventId,
    type: e.type,
    created_at: Math.floor(e.occurredAtMs / 1000),
    stored_at_ms: storedAtMs,
  };
  if (e.type === 'TranscriptionSessionOpened') {
    return {
      ...base,
      request_id: e.data.requestId,
      reason: '',
      customer_stream_id: e.data.customerStreamId,
      agent_stream_id: e.data.agentStreamId,
      language: e.data.language,
      summary_roles: [],
      summary_stream_ids: [],
      summary_audio_ms: [],
      summary_transcripts: [],
    };
  }
  const s = e.data.summaries;
  return {
    ...base,
    request_id: e.data.requestId ?? '',
    reason: e.data.reason,
    customer_stream_id: s.find((x) => x.role === 'customer')?.streamId ?? '',
    agent_stream_id: s.find((x) => x.role === 'agent')?.streamId ?? '',
    language: '',
    summary_roles: s.map((x) => x.role),
    summary_stream_ids: s.map((x) => x.streamId),
    summary_audio_ms: s.map((x) => x.audioDurationMs),
    summary_transcripts: s.map((x) => x.transcripts),
  };
}

export interface DeliveryRow {
  tenant_id: string;
  call_sid: string;
  occurred_at_ms: number;
  event_id: string;
  utterance_id: string;
  outcome: string;
  http_status: number | null;
  latency_ms: number;
  attempt: number;
  error: string;
  created_at: number;
  stored_at_ms: number;
}

export function deliveryRow(d: DeliveryAttempted, storedAtMs: number): DeliveryRow {
  return {
    tenant_id: d.tenantId,
    call_sid: d.callSid,
    occurred_at_ms: d.occurredAtMs,
    event_id: d.eventId,
    utterance_id: d.utteranceId,
    outcome: d.outcome,
    http_status: d.httpStatus,
    latency_ms: Math.max(0, Math.round(d.latencyMs)),
    attempt: d.attempt,
    error: d.error ?? '',
    created_at: Math.floor(d.occurredAtMs / 1000),
    stored_at_ms: storedAtMs,
  };
}

export interface AuditRow {
  app_id: string;
  occurred_at_ms: number;
  event_id: string;
  action: string;
  request_id: string;
  call_sid_hash: string;
  client_address_hash: string;
  created_at: number;
  stored_at_ms: number;
}

export function auditRow(a: AuditRecorded, storedAtMs: number): AuditRow {
  return {
    app_id: a.appId,
    occurred_at_ms: a.occurredAtMs,
    event_id: a.eventId,
    action: a.action,
    request_id: a.requestId,
    call_sid_hash: a.callSidHash ?? '',
    client_address_hash: a.clientAddressHash ?? '',
    created_at: Math.floor(a.occurredAtMs / 1000),
    stored_at_ms: storedAtMs,
  };
}

/** A row read back (either adapter) → the port's shape. Numbers may arrive as bigint or string. */
export function storedUtterance(row: Record<string, unknown>): StoredUtterance {
  return {
    eventId: String(row.event_id),
    utteranceId: String(row.utterance_id),
    tenantId: String(row.tenant_id),
    callSid: String(row.call_sid),
    streamId: String(row.stream_id),
    role: String(row.role) as Role,
    senderExternalId: String(row.sender_external_id),
    startMs: Number(row.start_ms),
    endMs: Number(row.end_ms),
    text: String(row.text),
    language: String(row.language),
    speechEndedAtMs: Number(row.speech_ended_at_ms),
    occurredAtMs: Number(row.occurred_at_ms),
  };
}

/** Columns read back for a StoredUtterance, in one list so both adapters select the same ones. */
export const UTTERANCE_COLUMNS = [
  'event_id',
  'utterance_id',
  'tenant_id',
  'call_sid',
  'stream_id',
  'role',
  'sender_external_id',
  'start_ms',
  'end_ms',
  'text',
  'language',
  'speech_ended_at_ms',
  'occurred_at_ms',
] as const;

/** Export windows: one hour per query keeps memory bounded on a day of millions of rows. */
export const EXPORT_CHUNK_MS = 3_600_000;

const U32 = 0xffff_ffff;
const isUInt = (n: unknown, max: number): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max;
// DateTime (seconds, UInt32) ends in 2106: later event times cannot be partitioned.
const isEventTime = (ms: unknown): boolean => isUInt(ms, U32 * 1000);

/**
 * Why an event cannot become a row (a value outside its column's type), or null. Such an
 * event is skipped and counted instead of being retried for ever: one bad record must not
 * stop the store for everyone.
 */
export function rowProblem(kind: 'utterances' | 'sessions' | 'deliveries' | 'audit', value: unknown): string | null {
  const v = value as Record<string, unknown>;
  if (typeof v !== 'object' || v === null) return 'not an event';
  if (!isEventTime(v.occurredAtMs)) return 'occurredAtMs out of range';
  const ids =
    kind === 'audit'
      ? ['eventId', 'appId']
      : kind === 'utterances'
        ? ['eventId', 'utteranceId', 'tenantId', 'callSid']
        : ['eventId', 'tenantId', 'callSid'];
  for (const id of ids) if (typeof v[id] !== 'string' || v[id] === '') return `${id} missing`;
  if (kind === 'utterances') {
    if (!isUInt(v.startMs, U32) || !isUInt(v.endMs, U32)) return 'startMs/endMs out of range';
    if (!isEventTime(v.speechEndedAtMs)) return 'speechEndedAtMs out of range';
  }
  if (kind === 'deliveries') {
    if (v.httpStatus !== null && !isUInt(v.httpStatus, 0xffff)) return 'httpStatus out of range';
    if (!isUInt(v.attempt, 0xffff)) return 'attempt out of range';
    if (typeof v.latencyMs !== 'number' || !Number.isFinite(v.latencyMs) || v.latencyMs < 0) return 'latencyMs out of range';
  }
  return null;
}
