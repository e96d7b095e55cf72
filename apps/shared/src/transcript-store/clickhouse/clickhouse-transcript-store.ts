import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { Logger } from '../../logger.js';
import type { StoreBatch, StoredUtterance, TranscriptStore } from '../../ports/transcript-store.port.js';
import { auditRow, deliveryRow, EXPORT_CHUNK_MS, sessionRow, storedUtterance, UTTERANCE_COLUMNS, utteranceRow } from '../rows.js';
import { StoreError } from '../store-error.js';
import { applyMigrations } from './migrations.js';
import { sqlIdentifier, sqlString, sqlUInt } from './sql-literal.js';

/**
 * The transcript store on ClickHouse 18.16 (distributed mode). Tables: docs/sql.md.
 * Reads collapse duplicates themselves (`LIMIT 1 BY utterance_id`) instead of trusting that
 * ReplacingMergeTree merges have run, and instead of FINAL, which cannot collapse copies that
 * landed in two day partitions (a replay just after midnight).
 */
export interface ClickHouseStoreOptions {
  readonly url: string;
  readonly database: string;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly requestTimeoutMs?: number;
  readonly migrationsDir?: string;
}

const COLUMNS = UTTERANCE_COLUMNS.join(', ');

export class ClickHouseTranscriptStore implements TranscriptStore {
  private readonly client: ClickHouseClient;
  private readonly database: string;

  constructor(private readonly options: ClickHouseStoreOptions) {
    this.database = sqlIdentifier(options.database);
    this.client = this.newClient(this.database);
  }

  private newClient(database: string): ClickHouseClient {
    return createClient({
      url: this.options.url,
      database,
      request_timeout: this.options.requestTimeoutMs ?? 30_000,
      application: 'earshot-store',
      // Failures reach our own (pino) logs through StoreError; the client's console logger would duplicate them.
      log: { level: ClickHouseLogLevel.OFF },
      // Sent with every request so a ClickHouse without our users.xml profile behaves the same.
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0, input_format_skip_unknown_fields: 1 },
    });
  }

  async migrate(): Promise<void> {
    await this.guard('migrate', async () => {
      const bootstrap = this.newClient('default');
      try {
        await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${this.database}` });
      } finally {
        await bootstrap.close();
      }
      await applyMigrations({
        client: this.client,
        logger: this.options.logger,
        nodeId: this.options.nodeId,
        dir: this.options.migrationsDir,
      });
    });
  }

  async writeBatch(batch: StoreBatch): Promise<void> {
    const now = Date.now();
    // Each table's insert is idempotent by its key, so retrying the whole batch after a
    // partial failure only writes duplicates that reads collapse.
    await this.guard('write', async () => {
      if (batch.utterances.length > 0)
        await this.insert(
          'utterances',
          batch.utterances.map((u) => utteranceRow(u, now)),
        );
      if (batch.sessions.length > 0)
        await this.insert(
          'session_events',
          batch.sessions.map((s) => sessionRow(s, now)),
        );
      if (batch.deliveries.length > 0)
        await this.insert(
          'deliveries',
          batch.deliveries.map((d) => deliveryRow(d, now)),
        );
      if (batch.audit.length > 0)
        await this.insert(
          'audit_events',
          batch.audit.map((a) => auditRow(a, now)),
        );
    });
  }

  private async insert(table: string, values: readonly object[]): Promise<void> {
    await this.client.insert({ table, values: values as object[], format: 'JSONEachRow' });
  }

  /**
   * Time order across media streams: start_ms restarts at 0 on each media stream of the call
   * (Twilio reconnects with a new one), so streams go in the order their first utterance was
   * recognized, then by start within a stream. The media stream is the second part of the
   * utterance id (`callSid:streamSid:track:startSample`).
   */
  async callMessages(tenantId: string, callSid: string, limit: number): Promise<StoredUtterance[]> {
    const call = `tenant_id = ${sqlString(tenantId)} AND call_sid = ${sqlString(callSid)}`;
    const query = `SELECT ${COLUMNS} FROM (
        SELECT ${COLUMNS}, stored_at_ms, splitByChar(':', utterance_id)[2] AS media_stream FROM utterances
        WHERE ${call}
        ORDER BY utterance_id, stored_at_ms DESC
        LIMIT 1 BY utterance_id
      ) ANY LEFT JOIN (
        SELECT splitByChar(':', utterance_id)[2] AS media_stream, min(occurred_at_ms) AS media_first FROM utterances
        WHERE ${call}
        GROUP BY media_stream
      ) USING media_stream
      ORDER BY media_first, start_ms, stream_id, utterance_id
      LIMIT ${sqlUInt(limit)}`;
    return this.guard('read', () => this.rows(query));
  }

  async *utterancesCreatedBetween(fromMs: number, toMs: number): AsyncIterable<StoredUtterance> {
    const tenants = await this.guard('read', async () => {
      const result = await this.client.query({
        query: `SELECT DISTINCT tenant_id FROM utterances WHERE ${createdBetween(fromMs, toMs)} ORDER BY tenant_id`,
        format: 'JSONEachRow',
      });
      return (await result.json<{ tenant_id: string }>()).map((r) => r.tenant_id);
    });
    for (const tenant of tenants) {
      for (let from = fromMs; from < toMs; from += EXPORT_CHUNK_MS) {
        const to = Math.min(toMs, from + EXPORT_CHUNK_MS);
        // A copy whose first occurrence is in the previous window (a replay that crossed the
        // window's start) was already returned there.
        const query = `SELECT ${COLUMNS} FROM (
            SELECT ${COLUMNS}, stored_at_ms FROM utterances
            WHERE tenant_id = ${sqlString(tenant)} AND ${createdBetween(from, to)}
            ORDER BY utterance_id, stored_at_ms DESC
            LIMIT 1 BY utterance_id
          )
          WHERE utterance_id NOT IN (
            SELECT utterance_id FROM utterances
            WHERE tenant_id = ${sqlString(tenant)} AND ${createdBetween(Math.max(0, from - EXPORT_CHUNK_MS), from)}
          )
          ORDER BY occurred_at_ms, utterance_id`;
        const rows = await this.guard('read', () => this.rows(query));
        yield* rows;
      }
    }
  }

  private async rows(query: string): Promise<StoredUtterance[]> {
    const result = await this.client.query({ query, format: 'JSONEachRow' });
    return (await result.json<Record<string, unknown>>()).map(storedUtterance);
  }

  /** Any client failure becomes a StoreError; network failures are retriable, SQL errors are not. */
  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const message = (error as Error).message ?? String(error);
      const serverRejected = /Code: \d+|DB::Exception|Syntax error|Unknown (identifier|table|column)/i.test(message);
      throw new StoreError(`ClickHouse ${operation} failed: ${message.slice(0, 500)}`, {
        retriable: !serverRejected,
        cause: error,
        fields: { operation },
      });
    }
  }

  /** Tests give each store a database of their own and drop it afterwards. */
  async dropDatabaseForTests(): Promise<void> {
    if (!this.database.startsWith('earshot_test_'))
      throw new StoreError(`refusing to drop ${this.database}: not a test database`, { retriable: false });
    await this.client.command({ query: `DROP DATABASE IF EXISTS ${this.database}` });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Rows created in [fromMs, toMs): the DateTime bound lets ClickHouse skip other days' partitions. */
function createdBetween(fromMs: number, toMs: number): string {
  const fromS = Math.floor(fromMs / 1000);
  const toS = Math.ceil(toMs / 1000);
  return `created_at >= toDateTime(${sqlUInt(fromS)}, 'UTC') AND created_at <= toDateTime(${sqlUInt(toS)}, 'UTC') AND occurred_at_ms >= ${sqlUInt(fromMs)} AND occurred_at_ms < ${sqlUInt(toMs)}`;
}

export function createClickHouseTranscriptStore(options: ClickHouseStoreOptions): TranscriptStore {
  return new ClickHouseTranscriptStore(options);
}
