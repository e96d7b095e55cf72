import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../../logger.js';
import { StoreError } from '../store-error.js';
import { sqlString, sqlUInt } from './sql-literal.js';

/**
 * Versioned ClickHouse migrations: `infra/clickhouse/migrations/NNN_name.sql`, applied in
 * order at start and recorded in `schema_migrations` (version, name, checksum).
 *
 * Two store nodes may start together and ClickHouse 18.16 has no transactions, so:
 * - a node applies pending migrations only while it holds a lock, which is a table:
 *   `CREATE TABLE schema_migrations_lock` succeeds for exactly one node (the others get
 *   "already exists" and wait). A lock older than `staleLockMs` is taken to be a crashed
 *   node's and dropped.
 * - every statement is itself idempotent (`IF NOT EXISTS`), so even a stale-lock race re-runs
 *   nothing harmful; the record table is a ReplacingMergeTree by version.
 * An applied migration whose file changed (checksum) is refused: write a new migration.
 */

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../../../infra/clickhouse/migrations/', import.meta.url));

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
  readonly checksum: string;
}

export function readMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const match = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new StoreError(`migration file name must be NNN_name.sql: ${file}`, { retriable: false });
      const text = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number(match[1]),
        name: match[2] as string,
        statements: splitStatements(text),
        checksum: createHash('sha256').update(text).digest('hex'),
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StoreError(`migrations must be numbered 001, 002, ... without gaps: found ${m.version} at position ${i + 1}`, {
        retriable: false,
      });
  });
  return migrations;
}

/** Statements end with `;` at the end of a line; `--` comment lines are dropped. */
export function splitStatements(text: string): string[] {
  const withoutComments = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface MigrateOptions {
  readonly client: ClickHouseClient;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly dir?: string;
  readonly staleLockMs?: number;
  readonly lockWaitMs?: number;
}

export async function applyMigrations(options: MigrateOptions): Promise<{ applied: number[] }> {
  const { client, logger } = options;
  const migrations = readMigrations(options.dir);
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (
      version UInt32, name String, checksum String, applied_at DateTime('UTC'), applied_by String
    ) ENGINE = ReplacingMergeTree ORDER BY version`,
  });
  if (pending(migrations, await appliedChecksums(client)).length === 0) return { applied: [] };

  await acquireLock(options);
  try {
    // Another node may have finished while we waited for the lock.
    const todo = pending(migrations, await appliedChecksums(client));
    for (const m of todo) {
      for (const statement of m.statements) await client.command({ query: statement });
      await client.command({
        query: `INSERT INTO schema_migrations (version, name, checksum, applied_at, applied_by) VALUES (${sqlUInt(m.version)}, ${sqlString(m.name)}, ${sqlString(m.checksum)}, now(), ${sqlString(options.nodeId)})`,
      });
      logger.info({ version: m.version, name: m.name }, 'store.migration_applied');
    }
    return { applied: todo.map((m) => m.version) };
  } finally {
    await client.command({ query: 'DROP TABLE IF EXISTS schema_migrations_lock' }).catch((error) => {
      logger.warn({ err: error }, 'store.migration_lock_release_failed');
    });
  }
}

async function appliedChecksums(client: ClickHouseClient): Promise<Map<number, string>> {
  const result = await client.query({
    query: 'SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version',
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ version: number | string; checksum: string }>();
  return new Map(rows.map((r) => [Number(r.version), r.checksum]));
}

function pending(migrations: readonly Migration[], applied: Map<number, string>): Migration[] {
  for (const m of migrations) {
    const checksum = applied.get(m.version);
    if (checksum !== undefined && checksum !== m.checksum) {
      throw new StoreError(
        `migration ${String(m.version).padStart(3, '0')}_${m.name}.sql was changed after it was applied; add a new migration instead`,
        {
          retriable: false,
        },
      );
    }
  }
  return migrations.filter((m) => !applied.has(m.version));
}

async function acquireLock(options: MigrateOptions): Promise<void> {
  const { client } = options;
  const staleLockMs = options.staleLockMs ?? 120_000;
  const deadline = Date.now() + (options.lockWaitMs ?? 180_000);
  for (;;) {
    try {
      // Exactly one concurrent CREATE TABLE (without IF NOT EXISTS) succeeds.
      await client.command({ query: 'CREATE TABLE schema_migrations_lock (holder String) ENGINE = TinyLog' });
      return;
    } catch (error) {
      if (!/already exists/i.test((error as Error).message)) throw error;
    }
    const result = await client.query({
      query:
        "SELECT toUInt64(now()) - toUInt64(metadata_modification_time) AS age_s FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations_lock'",
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ age_s: number | string }>();
    if (row && Number(row.age_s) * 1000 > staleLockMs) {
      options.logger.warn({ ageS: Number(row.age_s) }, 'store.migration_lock_stale; dropping it');
      await client.command({ query: 'DROP TABLE IF EXISTS schema_migrations_lock' });
      continue;
    }
    if (Date.now() > deadline)
      throw new StoreError('timed out waiting for another node to finish the ClickHouse migrations', { retriable: true });
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
  }
}
