import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportDay } from '../../apps/export/src/day-export.js';
import { UTTERANCE_COLUMNS } from '../../apps/export/src/utterances-feed.js';
import { createLocalFeedStorage } from '../../apps/shared/src/adapters/local-feed-storage.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { FeedDayRef } from '../../apps/shared/src/ports/feed-storage.port.js';
import type { TranscriptStore } from '../../apps/shared/src/ports/transcript-store.port.js';
import { testConfig } from '../support/infra.js';
import { batchOf, clickhouseTestStore, type DisposableStore, embeddedTestStore, utterance } from '../support/store.js';
import { gunzipText, parseCsv, unneutralize } from './support.js';

/**
 * The export against the real ClickHouse-backed transcript store: several days and tenants,
 * row counts per file and content checked against what was stored; then `earshot export` as a
 * child process on the same database.
 */
const H = 3_600_000;
const DAYS = ['2026-11-24', '2026-11-25', '2026-11-26'];
const TENANTS = ['app_alpha', 'app_bravo', 'app_charlie'];

function fixture(): UtteranceRecognized[] {
  const events: UtteranceRecognized[] = [];
  DAYS.forEach((date, d) => {
    const day = Date.parse(`${date}T00:00:00Z`);
    TENANTS.forEach((tenantId, n) => {
      // Tenant n has (n + d + 1) utterances per hour in hours 0, 6 and 23 (charlie skips the first day).
      if (n === 2 && d === 0) return;
      for (const hour of [0, 6, 23]) {
        for (let i = 0; i < n + d + 1; i++) {
          const callSid = `CA${String(n).repeat(2)}${date.replace(/-/g, '')}${'0'.repeat(22)}`.slice(0, 34);
          events.push(
            utterance({
              tenantId,
              callSid,
              role: i % 2 ? 'agent' : 'customer',
              startMs: hour * 10_000 + i * 1000,
              text: i === 1 ? `=${tenantId}, said "${date}"\nnext line` : `${tenantId} ${date} h${hour} #${i}`,
              language: 'en-US',
              occurredAtMs: day + hour * H + i * 1000 + 7,
            }),
          );
        }
      }
    });
  });
  return events;
}

const expected = (events: UtteranceRecognized[], tenant: string, date: string) =>
  events
    .filter((u) => u.tenantId === tenant && new Date(u.occurredAtMs).toISOString().startsWith(date))
    .sort((a, b) => a.occurredAtMs - b.occurredAtMs)
    .map((u) => ({
      conversation_id: u.callSid,
      stream_id: u.streamId,
      sender_role: u.role,
      sender_external_id: u.senderExternalId,
      utterance_text: u.text,
      start_ms: u.startMs,
      end_ms: u.endMs,
      created_ts: new Date(u.occurredAtMs).toISOString(),
      language: u.language,
      event_id: u.eventId,
      utterance_id: u.utteranceId,
    }));

const adapters: [string, () => DisposableStore<TranscriptStore>][] = [
  ['real ClickHouse', () => clickhouseTestStore()],
  ['the embedded DuckDB store', () => embeddedTestStore()],
];

for (const [name, create] of adapters)
  t.test(`several days and tenants from ${name}: row counts per file and content equal what was stored`, async (t) => {
    const ch = create();
    t.teardown(() => ch.dispose());
    await ch.store.migrate();
    const events = fixture();
    await ch.store.writeBatch(batchOf({ utterances: events }));
    await ch.store.writeBatch(batchOf({ utterances: events.slice(0, 5) })); // a replay: duplicates collapse
    const root = mkdtempSync(join(tmpdir(), 'earshot-export-int-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const storage = createLocalFeedStorage(root);

    for (const [d, date] of DAYS.entries()) {
      const summary = await exportDay({ source: ch.store, storage, date, maxFileBytes: 1 << 20 });
      t.equal(summary.rows, events.filter((u) => new Date(u.occurredAtMs).toISOString().startsWith(date)).length, `${date} rows`);
      t.equal(summary.tenants, d === 0 ? 2 : 3);
      for (const [n, tenant] of TENANTS.entries()) {
        const want = expected(events, tenant, date);
        const jsonDay: FeedDayRef = { feed: 'utterances', version: '1', format: 'jsonl', date };
        const csvDay: FeedDayRef = { ...jsonDay, format: 'csv' };
        if (want.length === 0) {
          t.same(await storage.listIntervals(tenant, jsonDay), [], `${tenant} has no ${date}`);
          continue;
        }
        t.same(await storage.listIntervals(tenant, jsonDay), ['hr=00', 'hr=06', 'hr=23']);
        const jsonRows: unknown[] = [];
        for (const file of await storage.listFiles(tenant, jsonDay)) {
          const opened = await storage.openFile(tenant, jsonDay, file.fileName);
          const chunks: Buffer[] = [];
          for await (const c of opened?.body ?? []) chunks.push(c as Buffer);
          const lines = gunzipText(Buffer.concat(chunks)).split('\n').filter(Boolean);
          t.equal(lines.length, n + d + 1, `${tenant} ${date} ${file.interval}: rows in the file`);
          jsonRows.push(...lines.map((l) => JSON.parse(l)));
        }
        t.same(jsonRows, want, `${tenant} ${date} jsonl equals the store`);
        const csvRows: string[][] = [];
        for (const file of await storage.listFiles(tenant, csvDay)) {
          const opened = await storage.openFile(tenant, csvDay, file.fileName);
          const chunks: Buffer[] = [];
          for await (const c of opened?.body ?? []) chunks.push(c as Buffer);
          const records = parseCsv(gunzipText(Buffer.concat(chunks)));
          t.same(records[0], [...UTTERANCE_COLUMNS]);
          csvRows.push(...records.slice(1));
        }
        t.same(
          csvRows.map((r) => r.map(unneutralize)),
          want.map((row) => UTTERANCE_COLUMNS.map((c) => String(row[c]))),
          `${tenant} ${date} csv equals the store`,
        );
      }
    }
  });

function earshot(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/earshot.js', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('earshot export --date as a child process: summary, files, one-line failures', { timeout: 120_000 }, async (t) => {
  const ch = clickhouseTestStore();
  t.teardown(() => ch.dispose());
  await ch.store.migrate();
  const events = fixture();
  await ch.store.writeBatch(batchOf({ utterances: events }));
  const dir = mkdtempSync(join(tmpdir(), 'earshot-export-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    EARSHOT_MODE: 'distributed',
    EARSHOT_CLICKHOUSE_URL: testConfig.EARSHOT_CLICKHOUSE_URL,
    EARSHOT_CLICKHOUSE_DATABASE: ch.location,
    EARSHOT_DATA_DIR: dir,
  };
  const ok = await earshot(['export', '--date', '2026-11-25', '--json'], env);
  t.equal(ok.code, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout);
  t.match(summary, {
    date: '2026-11-25',
    feed: 'utterances',
    rows: events.filter((u) => new Date(u.occurredAtMs).toISOString().startsWith('2026-11-25')).length,
    tenants: 3,
    files: 18,
    dir: join(dir, 'export'),
  });
  t.equal(ok.stderr, '', 'no progress bar when stderr is not a terminal');
  t.same(await createLocalFeedStorage(join(dir, 'export')).listDates('app_bravo', 'utterances', '1', 'jsonl'), ['2026-11-25']);

  const badDate = await earshot(['export', '--date', '2026-02-30'], env);
  t.equal(badDate.code, 1);
  t.equal(badDate.stderr.trim(), "earshot: date must be a calendar date YYYY-MM-DD, not '2026-02-30'");
  const noDate = await earshot(['export'], env);
  t.not(noDate.code, 0);
  t.match(noDate.stderr, /^earshot: --date is required/);
  const down = await earshot(['export', '--date', '2026-11-25'], { ...env, EARSHOT_CLICKHOUSE_URL: 'http://127.0.0.1:9' });
  t.equal(down.code, 1);
  t.equal(down.stderr.trim().split('\n').length, 1, `one line: ${down.stderr.trim()}`);
  t.match(down.stderr, /^earshot: /);
});
