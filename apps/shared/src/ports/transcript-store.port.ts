import type { AuditRecorded, DeliveryAttempted, Role, SessionEvent, UtteranceRecognized } from '../events.js';

/**
 * Where finished transcripts live after the event log (SPEC §9, §3.4, §3.5): written by the
 * store app's batching consumer, read by the after-call messages API and the daily export.
 *
 * Two adapters behind this one port, with one contract test suite:
 * - ClickHouse (distributed mode): ReplacingMergeTree tables, migrations in infra/clickhouse.
 * - an embedded database (embedded mode, no servers), files under EARSHOT_DATA_DIR.
 *
 * Every read is scoped by tenant. Writes are idempotent by `utteranceId` / `eventId`: the same
 * utterance written twice (a replay after a crash) reads back once.
 */
export interface StoredUtterance {
  readonly eventId: string;
  readonly utteranceId: string;
  readonly tenantId: string;
  readonly callSid: string;
  readonly streamId: string;
  readonly role: Role;
  readonly senderExternalId: string;
  readonly startMs: number;
  readonly endMs: number;
  /** The text in the redaction mode that was in force (what the API and the feed show). */
  readonly text: string;
  readonly language: string;
  readonly speechEndedAtMs: number;
  /** When the utterance event was produced (the "created" timestamp; the export's day key). */
  readonly occurredAtMs: number;
}

export interface TranscriptStore {
  /** Creates or upgrades the schema (versioned, recorded, idempotent). Called once at start. */
  migrate(): Promise<void>;
  /** Writes one batch; resolves only once the store acknowledged it (then offsets may be committed). */
  writeBatch(batch: StoreBatch): Promise<void>;
  /** A call's utterances in time order (startMs, then stream), duplicates collapsed, at most `limit`. */
  callMessages(tenantId: string, callSid: string, limit: number): Promise<StoredUtterance[]>;
  /**
   * Every tenant's utterances created in [fromMs, toMs), ordered by tenant then occurredAtMs,
   * duplicates collapsed, streamed (a day may hold millions). Used by the export.
   */
  utterancesCreatedBetween(fromMs: number, toMs: number): AsyncIterable<StoredUtterance>;
  close(): Promise<void>;
}

export interface StoreBatch {
  readonly utterances: readonly UtteranceRecognized[];
  readonly sessions: readonly SessionEvent[];
  readonly deliveries: readonly DeliveryAttempted[];
  readonly audit: readonly AuditRecorded[];
}
