import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { AuditRecorded, DeliveryAttempted, SessionEvent, UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { StoreBatch } from '../../apps/shared/src/ports/transcript-store.port.js';
import { ClickHouseTranscriptStore } from '../../apps/shared/src/transcript-store/clickhouse/clickhouse-transcript-store.js';
import { DuckDbTranscriptStore } from '../../apps/shared/src/transcript-store/embedded/duckdb-transcript-store.js';
import { testConfig, testLogger } from './infra.js';
import { randomSuffix } from './wait.js';

/**
 * Transcript-store helpers: event fixtures, and stores on a database (ClickHouse) or a file
 * (DuckDB) of their own so parallel test files never meet. `dispose()` drops what it made.
 */
export interface DisposableStore<S> {
  readonly store: S;
  /** Another store on the same database/file (a second node, or the same node after a restart). */
  reopen(): S;
  readonly location: string;
  dispose(): Promise<void>;
}

export function clickhouseTestStore(url = testConfig.EARSHOT_CLICKHOUSE_URL): DisposableStore<ClickHouseTranscriptStore> {
  const database = `earshot_test_${randomSuffix()}`;
  const opened: ClickHouseTranscriptStore[] = [];
  const reopen = () => {
    const store = new ClickHouseTranscriptStore({ url, database, logger: testLogger, nodeId: `test-${opened.length}` });
    opened.push(store);
    return store;
  };
  return {
    store: reopen(),
    reopen,
    location: database,
    dispose: async () => {
      for (const store of opened) await store.close().catch(() => undefined);
      const admin = createClient({ url: testConfig.EARSHOT_CLICKHOUSE_URL });
      await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
      await admin.close();
    },
  };
}

export function embeddedTestStore(
  options: { idleCloseMs?: number; maxHoldMs?: number; lockWaitMs?: number } = {},
): DisposableStore<DuckDbTranscriptStore> {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-store-'));
  const path = join(dir, 'transcripts.duckdb');
  const opened: DuckDbTranscriptStore[] = [];
  const reopen = () => {
    const store = new DuckDbTranscriptStore(path, { logger: testLogger, ...options });
    opened.push(store);
    return store;
  };
  return {
    store: reopen(),
    reopen,
    location: path,
    dispose: async () => {
      for (const store of opened) await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A SQL client on a test store's ClickHouse database (raw checks, docs/sql.md queries). */
export function clickhouseSql(database: string, url = testConfig.EARSHOT_CLICKHOUSE_URL) {
  return createClient({ url, database });
}

const BASE_MS = Date.UTC(2026, 10, 20, 10, 0, 0);

export function utterance(
  overrides: Partial<UtteranceRecognized> & { callSid?: string; startMs?: number; mediaStream?: string } = {},
): UtteranceRecognized {
  const callSid = overrides.callSid ?? 'CA00000000000000000000000000000001';
  const track = overrides.track ?? (overrides.role === 'agent' ? 'outbound' : 'inbound');
  const startMs = overrides.startMs ?? 0;
  // Both tracks of a call on one media stream, as from Twilio (`mediaStream` for a reconnect's second one).
  const utteranceId = overrides.utteranceId ?? `${callSid}:${overrides.mediaStream ?? 'MZ1'}:${track}:${startMs * 8}`;
  const role = overrides.role ?? (track === 'outbound' ? 'agent' : 'customer');
  return {
    eventId: `ev-${utteranceId}`,
    utteranceId,
    callSid,
    tenantId: 'tenant-a',
    streamId: role === 'customer' ? 'customer-stream' : 'agent-stream',
    role,
    senderExternalId: role === 'customer' ? 'cust-1' : 'agent-1',
    track,
    startMs,
    endMs: startMs + 900,
    text: `words at ${startMs}`,
    unredactedText: null,
    language: 'en-US',
    tokens: null,
    engine: 'moonshine',
    model: 'tiny',
    speechEndedAtMs: BASE_MS + startMs + 900,
    occurredAtMs: BASE_MS + startMs + 1000,
    ...withoutMediaStream(overrides),
  };
}

export function sessionOpened(callSid: string, tenantId = 'tenant-a', occurredAtMs = BASE_MS): SessionEvent {
  return {
    eventId: `open-${callSid}`,
    callSid,
    tenantId,
    occurredAtMs,
    type: 'TranscriptionSessionOpened',
    data: {
      requestId: 'req-1',
      customerStreamId: 'customer-stream',
      agentStreamId: 'agent-stream',
      language: 'en-US',
      start: null,
      commandPartition: 0,
      commandOffset: 0,
      startRequestedAtMs: occurredAtMs,
    },
  };
}

export function sessionClosed(callSid: string, tenantId = 'tenant-a', occurredAtMs = BASE_MS + 60_000): SessionEvent {
  return {
    eventId: `close-${callSid}`,
    callSid,
    tenantId,
    occurredAtMs,
    type: 'TranscriptionSessionClosed',
    data: {
      requestId: 'req-2',
      reason: 'stop_requested',
      summaries: [
        {
          role: 'customer',
          streamId: 'customer-stream',
          totalAudioBytes: 480_000,
          audioDurationMs: 60_000,
          streamingSeconds: 60,
          transcripts: 7,
        },
        {
          role: 'agent',
          streamId: 'agent-stream',
          totalAudioBytes: 480_000,
          audioDurationMs: 60_000,
          streamingSeconds: 60,
          transcripts: 5,
        },
      ],
      commandPartition: 0,
      commandOffset: 1,
    },
  };
}

export function delivery(u: UtteranceRecognized, outcome: DeliveryAttempted['outcome'] = 'delivered'): DeliveryAttempted {
  return {
    eventId: `dl-${u.utteranceId}`,
    utteranceId: u.utteranceId,
    callSid: u.callSid,
    tenantId: u.tenantId,
    outcome,
    httpStatus: outcome === 'delivered' ? 200 : null,
    latencyMs: 12,
    attempt: 1,
    error: outcome === 'delivered' ? null : 'timeout after 5000 ms',
    occurredAtMs: u.occurredAtMs + 20,
  };
}

export function auditEvent(action: string, seq: number, appId = 'tenant-a'): AuditRecorded {
  return {
    eventId: `audit-${appId}-${seq}`,
    appId,
    action,
    requestId: `req-${seq}`,
    callSidHash: 'h-call',
    clientAddressHash: 'h-addr',
    occurredAtMs: BASE_MS + seq,
  };
}

export function batchOf(parts: Partial<StoreBatch>): StoreBatch {
  return { utterances: [], sessions: [], deliveries: [], audit: [], ...parts };
}

export const TEST_DAY_START_MS = Date.UTC(2026, 10, 20);

function withoutMediaStream<T extends { mediaStream?: string }>(overrides: T): Omit<T, 'mediaStream'> {
  const { mediaStream: _, ...rest } = overrides;
  return rest;
}
