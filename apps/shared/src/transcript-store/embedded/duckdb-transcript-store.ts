import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Logger } from '../../logger.js';
import type { StoreBatch, StoredUtterance, TranscriptStore } from '../../ports/transcript-store.port.js';
import { auditRow, deliveryRow, EXPORT_CHUNK_MS, sessionRow, storedUtterance, UTTERANCE_COLUMNS, utteranceRow } from '../rows.js';
import { StoreError } from '../store-error.js';
import { type DuckDbFile, type DuckDbFileOptions, sharedDuckDbFile } from './duckdb-file.js';
import { DUCKDB_MIGRATIONS, ID_COLUMN } from './duckdb-migrations.js';

/**
 * The transcript store for embedded mode: one DuckDB file (`<EARSHOT_DATA_DIR>/store.duckdb`),
 * no server. DuckDB rather than SQLite: a prebuilt npm package (better-sqlite3 compiles for
 * minutes on each fresh install, NOTES.md), and columnar SQL close to ClickHouse's for the
 * same ad-hoc queries. Its single-writer file lock is handled by `DuckDbFile`.
 *
 * Duplicates never get in: an insert skips ids already stored (the first copy stays; copies
 * of one utterance carry the same text). No primary keys or indexes: DuckDB loads and rewrites
 * them on every open and close, which this store does about once a second.
 */
const COLUMNS = UTTERANCE_COLUMNS.join(', ');

export class DuckDbTranscriptStore implements TranscriptStore {
  private readonly file: DuckDbFile;
  private closed = false;

  constructor(path: string, options: DuckDbFileOptions) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.file = sharedDuckDbFile(path, options);
  }

  /** How often the file was opened (tests: it is released between operations). */
  get opens(): number {
    return this.file.opens;
  }

  async migrate(): Promise<void> {
    await this.file.use(async (c) => {
      await c.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)');
      const applied = new Set((await c.runAndReadAll('SELECT version FROM schema_migrations')).getRowsJS().map((r) => Number(r[0])));
      for (const m of DUCKDB_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        // One writer at a time (the file lock) and a transaction: a crash leaves nothing half done.
        await c.run('BEGIN TRANSACTION');
        try {
          for (const statement of m.statements) await c.run(statement);
          await c.run('INSERT INTO schema_migrations VALUES ($1, $2, now())', [m.version, m.name]);
          await c.run('COMMIT');
        } catch (error) {
          await c.run('ROLLBACK');
          throw new StoreError(`embedded store migration ${m.version} failed: ${(error as Error).message}`, {
            retriable: false,
            cause: error,
          });
        }
      }
    });
  }

  async writeBatch(batch: StoreBatch): Promise<void> {
    const now = Date.now();
    await this.file.use(async (c) => {
      await c.run('BEGIN TRANSACTION');
      try {
        await insertRows(
          c,
          'utterances',
          batch.utterances.map((u) => utteranceRow(u, now)),
        );
        await insertRows(
          c,
          'session_events',
          batch.sessions.map((s) => sessionRow(s, now)),
        );
        await insertRows(
          c,
          'deliveries',
          batch.deliveries.map((d) => deliveryRow(d, now)),
        );
        await insertRows(
          c,
          'audit_events',
          batch.audit.map((a) => auditRow(a, now)),
        );
        await c.run('COMMIT');
      } catch (error) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw new StoreError(`embedded store write failed: ${(error as Error).message}`, { retriable: false, cause: error });
      }
    });
  }

  async callMessages(tenantId: string, callSid: string, limit: number): Promise<StoredUtterance[]> {
    return this.file.use(async (c) => {
      const reader = await c.runAndReadAll(
        // Media streams in the order of their first utterance, then start within one (as ClickHouse's adapter).
        `SELECT ${COLUMNS} FROM (
           SELECT *, min(occurred_at_ms) OVER (PARTITION BY split_part(utterance_id, ':', 2)) AS media_first
           FROM utterances WHERE tenant_id = $1 AND call_sid = $2
         ) ORDER BY media_first, start_ms, stream_id, utterance_id LIMIT $3`,
        [tenantId, callSid, limit],
      );
      return reader.getRowObjectsJS().map(storedUtterance);
    });
  }

  async *utterancesCreatedBetween(fromMs: number, toMs: number): AsyncIterable<StoredUtterance> {
    const tenants = await this.file.use(async (c) => {
      const reader = await c.runAndReadAll(
        'SELECT DISTINCT tenant_id FROM utterances WHERE occurred_at_ms >= $1 AND occurred_at_ms < $2 ORDER BY tenant_id',
        [fromMs, toMs],
      );
      return reader.getRowsJS().map((r) => String(r[0]));
    });
    // One tenant-hour per `use()`: the file is never held for a whole day's read.
    for (const tenant of tenants) {
      for (let from = fromMs; from < toMs; from += EXPORT_CHUNK_MS) {
        const to = Math.min(toMs, from + EXPORT_CHUNK_MS);
        const rows = await this.file.use(async (c) => {
          const reader = await c.runAndReadAll(
            `SELECT ${COLUMNS} FROM utterances WHERE tenant_id = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3 ORDER BY occurred_at_ms, utterance_id`,
            [tenant, from, to],
          );
          return reader.getRowObjectsJS().map(storedUtterance);
        });
        yield* rows;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }
}

/**
 * Bulk insert: rows go through DuckDB's appender into a temporary staging table (numbers as
 * DOUBLE, which holds every millisecond value exactly; text and joined lists as VARCHAR), then
 * one `INSERT ... SELECT` casts them into the real table. Binding thousands of
 * parameters instead took seconds per 1,000 rows (docs/benchmarks.md, store).
 */
async function insertRows(c: DuckDBConnection, table: string, rows: readonly object[]): Promise<void> {
  if (rows.length === 0) return;
  const records = rows as readonly Record<string, unknown>[];
  const columns = Object.keys(records[0] as object);
  const kinds = columns.map((name) => {
    const sample = records.find((r) => r[name] !== null && r[name] !== undefined)?.[name];
    return Array.isArray(sample) ? 'list' : typeof sample === 'number' ? 'number' : 'text';
  });
  const staging = `staging_${table}`;
  await c.run(
    `CREATE OR REPLACE TEMP TABLE ${staging} (${columns.map((n, i) => `${n} ${kinds[i] === 'number' ? 'DOUBLE' : 'VARCHAR'}`).join(', ')})`,
  );
  const appender = await c.createAppender(staging, 'main', 'temp');
  try {
    for (const row of records) {
      for (const name of columns) {
        const value = row[name];
        if (value === null || value === undefined) appender.appendNull();
        else if (typeof value === 'number') appender.appendDouble(value);
        // Lists travel as one string joined by U+001F and are split back in SQL.
        else if (Array.isArray(value)) appender.appendVarchar(value.join('\u001f'));
        else appender.appendVarchar(String(value));
      }
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  const select = columns.map((name, i) => {
    if (kinds[i] !== 'list') return name;
    return name === 'summary_audio_ms' || name === 'summary_transcripts' ? `split_list(${name})::UBIGINT[]` : `split_list(${name})`;
  });
  // One copy per id within the batch, none whose id is already stored. Race-free: one writer
  // at a time holds the file (DuckDbFile), and this runs in the batch's transaction.
  const id = ID_COLUMN[table] as string;
  await c.run(
    `INSERT INTO ${table} (${columns.join(', ')}) SELECT ${select.join(', ')} FROM (SELECT DISTINCT ON (${id}) * FROM ${staging}) s ` +
      `WHERE NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.${id} = s.${id})`,
  );
  await c.run(`DROP TABLE ${staging}`);
}

export function createDuckDbTranscriptStore(path: string, options: DuckDbFileOptions & { logger: Logger }): TranscriptStore {
  return new DuckDbTranscriptStore(path, options);
}
