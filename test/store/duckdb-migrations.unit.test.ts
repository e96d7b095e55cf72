import { DuckDBInstance } from '@duckdb/node-api';
import t from 'tap';
import { DUCKDB_MIGRATIONS } from '../../apps/shared/src/transcript-store/embedded/duckdb-migrations.js';
import { batchOf, embeddedTestStore, utterance } from '../support/store.js';

/** The embedded store's versioned schema: a file made by version 1 is upgraded in place, rows kept. */
t.test('a store file at version 1 upgrades to the latest version and keeps its rows', async (t) => {
  const made = embeddedTestStore();
  t.teardown(() => made.dispose());
  // Build a version-1 file by hand, with one row, as an older release left it.
  const instance = await DuckDBInstance.create(made.location);
  const c = await instance.connect();
  await c.run('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)');
  for (const statement of DUCKDB_MIGRATIONS[0]?.statements ?? []) await c.run(statement);
  await c.run("INSERT INTO schema_migrations VALUES (1, 'initial_tables', now())");
  const old = utterance({ callSid: 'CAupgrade', startMs: 0 });
  await c.run(
    `INSERT INTO utterances VALUES ('tenant-a', 'CAupgrade', 0, '${old.utteranceId}', '${old.eventId}', 'customer-stream', 'customer', 'cust-1', 'inbound', 900, 'from version 1', 'en-US', 'moonshine', 'tiny', ${old.speechEndedAtMs}, ${old.occurredAtMs}, ${Math.floor(old.occurredAtMs / 1000)}, 1)`,
  );
  c.closeSync();
  instance.closeSync();

  await made.store.migrate();
  await made.store.migrate(); // idempotent
  await made.store.writeBatch(batchOf({ utterances: [old, utterance({ callSid: 'CAupgrade', startMs: 1000 })] }));
  const read = await made.store.callMessages('tenant-a', 'CAupgrade', 10);
  t.same(
    read.map((u) => [u.startMs, u.text]),
    [
      [0, 'from version 1'],
      [1000, 'words at 1000'],
    ],
    'the old row is kept and its replayed copy is not added',
  );
  await made.store.close(); // one DuckDB instance per file at a time, in this process too
  const check = await DuckDBInstance.create(made.location);
  t.teardown(() => check.closeSync());
  const cc = await check.connect();
  t.teardown(() => cc.closeSync());
  const versions = (await cc.runAndReadAll('SELECT version FROM schema_migrations ORDER BY version')).getRowsJS().map((r) => Number(r[0]));
  t.same(
    versions,
    DUCKDB_MIGRATIONS.map((m) => m.version),
  );
  const indexes = (await cc.runAndReadAll("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'utterances'")).getRowsJS()[0]?.[0];
  t.equal(Number(indexes), 0, 'no index left to load on every open');
});
