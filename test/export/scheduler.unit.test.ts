import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startExportApp } from '../../apps/export/main.js';
import { createLocalRunLedger } from '../../apps/export/src/run-ledger.js';
import { DailyExportScheduler, nextFireAt } from '../../apps/export/src/scheduler.js';
import { createLocalFeedStorage } from '../../apps/shared/src/adapters/local-feed-storage.js';
import { testLogger } from '../support/infra.js';
import { testRuntime } from '../support/runtime.js';
import { FakeClock, memorySource, stored } from './support.js';

/** The daily run at EARSHOT_EXPORT_AT_UTC for the previous UTC day, on an injected clock; one node per day. */
const at = (iso: string) => Date.parse(iso);

t.test('nextFireAt: the first fire time strictly after now', async (t) => {
  t.equal(nextFireAt(at('2026-11-27T01:59:59Z'), '02:00'), at('2026-11-27T02:00:00Z'));
  t.equal(nextFireAt(at('2026-11-27T02:00:00Z'), '02:00'), at('2026-11-28T02:00:00Z'));
  t.equal(nextFireAt(at('2026-12-31T23:00:00Z'), '23:30'), at('2026-12-31T23:30:00Z'));
  t.throws(() => nextFireAt(0, '2:00'), /HH:MM/);
});

t.test('fires at 02:00 UTC for the previous day, every day; a failure is retried, a late timer still exports the right day', async (t) => {
  const clock = new FakeClock(at('2026-11-27T01:00:00Z'));
  const runs: string[] = [];
  let failNext = false;
  const scheduler = new DailyExportScheduler({
    atUtc: '02:00',
    clock,
    logger: testLogger.child({ level: 'silent' }),
    retryMs: 600_000,
    runDay: async (date) => {
      runs.push(date);
      if (failNext) {
        failNext = false;
        throw new Error('store down');
      }
    },
  });
  scheduler.start();
  await clock.advanceTo(at('2026-11-27T01:59:59Z'));
  t.same(runs, [], 'nothing before 02:00');
  await clock.advanceTo(at('2026-11-27T02:00:00Z'));
  t.same(runs, ['2026-11-26']);
  t.equal(scheduler.nextRunAt, at('2026-11-28T02:00:00Z'));
  failNext = true;
  await clock.advanceTo(at('2026-11-28T02:05:00Z'));
  t.same(runs, ['2026-11-26', '2026-11-27'], 'the failed run');
  await clock.advanceTo(at('2026-11-28T02:10:00Z'));
  t.same(runs, ['2026-11-26', '2026-11-27', '2026-11-27'], 'retried 10 minutes later for the same day');
  await clock.advanceTo(at('2026-11-30T02:00:00Z'));
  t.same(runs.slice(3), ['2026-11-28', '2026-11-29']);
  await scheduler.stop();
  t.equal(clock.pending, 0, 'stop cancels the timer');
});

t.test('started after the time of day: runs the previous day at once; EARSHOT_EXPORT_AT_UTC is honoured', async (t) => {
  const clock = new FakeClock(at('2026-11-27T15:00:00Z'));
  const runs: string[] = [];
  const scheduler = new DailyExportScheduler({ atUtc: '03:30', clock, logger: testLogger, runDay: async (d) => void runs.push(d) });
  scheduler.start();
  await clock.advanceTo(at('2026-11-27T15:00:01Z'));
  t.same(runs, ['2026-11-26']);
  await clock.advanceTo(at('2026-11-28T03:29:59Z'));
  t.same(runs, ['2026-11-26']);
  await clock.advanceTo(at('2026-11-28T03:30:00Z'));
  t.same(runs, ['2026-11-26', '2026-11-27']);
  await scheduler.stop();
});

t.test('two export nodes on one directory: only one exports the day; a crashed claim expires', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rows = [stored({ tenantId: 'tenant-a', occurredAtMs: at('2026-11-26T10:00:00Z') })];
  const clock = new FakeClock(at('2026-11-27T01:00:00Z'));
  const sources = [memorySource(rows), memorySource(rows)];
  const runtime = await testRuntime({ env: { EARSHOT_EXPORT_DIR: dir } });
  t.teardown(() => runtime.cleanup());
  const apps = await Promise.all(sources.map((source) => startExportApp(runtime, { source, clock })));
  await clock.advanceTo(at('2026-11-27T02:00:00Z'));
  await new Promise((r) => setTimeout(r, 200));
  t.same(sources.map((s) => s.reads).sort(), [0, 1], 'one node read the store, the other skipped the day');
  t.same(await createLocalFeedStorage(dir).listDates('tenant-a', 'utterances', '1', 'csv'), ['2026-11-26']);
  t.match(await apps[0]?.runDay('2026-11-26'), { outcome: 'skipped', reason: 'done' });
  for (const app of apps) await app.stop();

  const ledger = createLocalRunLedger(dir);
  const now = at('2026-11-28T02:00:00Z');
  t.same(await ledger.claim('2026-11-27', 'node-1', now, 60_000), { claimed: true });
  t.match(await ledger.claim('2026-11-27', 'node-2', now + 1000, 60_000), { claimed: false, reason: 'held', owner: 'node-1' });
  t.same(await ledger.claim('2026-11-27', 'node-2', now + 61_000, 60_000), { claimed: true }, 'node-1 died: its claim expired');
  await ledger.release('2026-11-27', 'node-1');
  t.match(
    await ledger.claim('2026-11-27', 'node-3', now + 62_000, 60_000),
    { claimed: false, reason: 'held', owner: 'node-2' },
    'release only frees your own claim',
  );
  await ledger.complete('2026-11-27', 'node-2', { rows: 0 });
  t.match(await ledger.claim('2026-11-27', 'node-3', now + 63_000, 60_000), { claimed: false, reason: 'done' });
  t.same(await ledger.claim('2026-11-27', 'node-3', now + 63_000, 60_000, { force: true }), { claimed: true }, 'a rerun by hand');
});

t.test('export settings are validated with precise messages', async (t) => {
  const { loadEarshotConfig } = await import('../../apps/shared/src/config.js');
  t.equal(loadEarshotConfig({ env: {} }).EARSHOT_EXPORT_AT_UTC, '02:00');
  t.throws(() => loadEarshotConfig({ env: { EARSHOT_EXPORT_AT_UTC: '2:00' } }), /EARSHOT_EXPORT_AT_UTC: HH:MM in UTC/);
  t.throws(() => loadEarshotConfig({ env: { EARSHOT_EXPORT_AT_UTC: '24:00' } }), /EARSHOT_EXPORT_AT_UTC/);
  t.throws(
    () => loadEarshotConfig({ env: { EARSHOT_EXPORT_URL_BASE: 'https://x.example/path' } }),
    /EARSHOT_EXPORT_URL_BASE: http\(s\):\/\/ and a host, no path/,
  );
  t.throws(() => loadEarshotConfig({ env: { EARSHOT_EXPORT_URL_TTL_S: '5' } }), /EARSHOT_EXPORT_URL_TTL_S/);
});
