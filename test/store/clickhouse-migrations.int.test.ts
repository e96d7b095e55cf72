import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import t, { type Test } from 'tap';
import {
  applyMigrations,
  MIGRATIONS_DIR,
  readMigrations,
  splitStatements,
} from '../../apps/shared/src/transcript-store/clickhouse/migrations.js';
import { testConfig, testLogger } from '../support/infra.js';
import { randomSuffix } from '../support/wait.js';

/** Versioned ClickHouse migrations on the real server: recorded, idempotent, one node at a time. */
async function freshDatabase(t: Test) {
  const database = `earshot_test_${randomSuffix()}`;
  const admin = createClient({ url: testConfig.EARSHOT_CLICKHOUSE_URL });
  await admin.command({ query: `CREATE DATABASE ${database}` });
  const clients: ReturnType<typeof createClient>[] = [];
  const client = () => {
    const c = createClient({ url: testConfig.EARSHOT_CLICKHOUSE_URL, database });
    clients.push(c);
    return c;
  };
  t.teardown(async () => {
    for (const c of clients) await c.close();
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
  });
  const rows = async <T>(query: string) => (await (await client().query({ query, format: 'JSONEachRow' })).json<T>()) as T[];
  return { database, client, rows };
}

function migrationsCopy(t: Test, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('applies every migration once, records it, and does nothing the second time', async (t) => {
  const db = await freshDatabase(t);
  const first = await applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n1' });
  t.same(
    first.applied,
    readMigrations().map((m) => m.version),
  );
  const second = await applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n1' });
  t.same(second.applied, []);
  const recorded = await db.rows<{ version: number; name: string; applied_by: string }>(
    'SELECT version, name, applied_by FROM schema_migrations FINAL ORDER BY version',
  );
  t.same(recorded, [{ version: 1, name: 'initial_tables', applied_by: 'n1' }]);
  const tables = await db.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${db.database}' ORDER BY name`);
  t.same(
    tables.map((r) => r.name),
    ['audit_events', 'deliveries', 'schema_migrations', 'session_events', 'utterances'],
    'the lock table is gone',
  );
});

t.test('five nodes starting together: a migration that is not idempotent still runs exactly once', async (t) => {
  const db = await freshDatabase(t);
  // No IF NOT EXISTS: a second run would fail, so all five succeeding proves one ran it.
  const dir = migrationsCopy(t, {
    '002_not_idempotent.sql': 'CREATE TABLE probe_once (x UInt8) ENGINE = TinyLog;\nINSERT INTO probe_once VALUES (1);\n',
  });
  const results = await Promise.all(
    Array.from({ length: 5 }, (_, i) => applyMigrations({ client: db.client(), logger: testLogger, nodeId: `node-${i}`, dir })),
  );
  t.equal(results.filter((r) => r.applied.includes(2)).length, 1, 'one node applied version 2');
  t.same(await db.rows('SELECT x FROM probe_once'), [{ x: 1 }], 'its statements ran once');
  t.same(await db.rows('SELECT count() AS n FROM schema_migrations FINAL'), [{ n: 2 }]);
});

t.test('a lock left by a crashed node is taken over once it is stale', async (t) => {
  const db = await freshDatabase(t);
  await db.client().command({ query: 'CREATE TABLE schema_migrations_lock (holder String) ENGINE = TinyLog' });
  await new Promise((r) => setTimeout(r, 2100)); // metadata times have one-second resolution
  const result = await applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n2', staleLockMs: 1000 });
  t.same(result.applied, [1]);
});

t.test('a fresh lock held by a live node makes others wait, then time out with a retriable error', async (t) => {
  const db = await freshDatabase(t);
  await db.client().command({ query: 'CREATE TABLE schema_migrations_lock (holder String) ENGINE = TinyLog' });
  await t.rejects(applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n3', lockWaitMs: 500 }), {
    code: 'EARSHOT_STORE_FAILED',
    retriable: true,
    message: /timed out waiting for another node/,
  });
});

t.test('an applied migration that was edited afterwards is refused', async (t) => {
  const db = await freshDatabase(t);
  const dir = migrationsCopy(t);
  await applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n4', dir });
  writeFileSync(join(dir, '001_initial_tables.sql'), 'CREATE TABLE IF NOT EXISTS sneaky (x UInt8) ENGINE = TinyLog;\n');
  await t.rejects(applyMigrations({ client: db.client(), logger: testLogger, nodeId: 'n4', dir }), {
    message: /001_initial_tables\.sql was changed after it was applied/,
  });
});

t.test('migration files: names, numbering, statements', async (t) => {
  t.throws(() => readMigrations(migrationsCopy(t, { '2_bad.sql': 'SELECT 1;' })), /NNN_name\.sql: 2_bad\.sql/);
  t.throws(() => readMigrations(migrationsCopy(t, { '003_gap.sql': 'SELECT 1;' })), /without gaps: found 3 at position 2/);
  t.same(splitStatements('-- a comment; with a semicolon\nCREATE TABLE a (x UInt8)\nENGINE = TinyLog;\n\nSELECT 1;\n'), [
    'CREATE TABLE a (x UInt8)\nENGINE = TinyLog',
    'SELECT 1',
  ]);
});
