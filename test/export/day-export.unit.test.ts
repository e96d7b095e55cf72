import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportDay } from '../../apps/export/src/day-export.js';
import { CSV_HEADER, csvField, toUtteranceRow, UTTERANCE_COLUMNS } from '../../apps/export/src/utterances-feed.js';
import { createLocalFeedStorage } from '../../apps/shared/src/adapters/local-feed-storage.js';
import type { FeedDayRef, FeedStorage } from '../../apps/shared/src/ports/feed-storage.port.js';
import type { StoredUtterance } from '../../apps/shared/src/ports/transcript-store.port.js';
import { gunzipText, memorySource, parseCsv, stored, tree, unneutralize } from './support.js';

/** The utterances feed written from an in-memory store: layout, content parsed back, splits, atomic reruns. */
const D1 = Date.UTC(2026, 10, 25);
const D2 = Date.UTC(2026, 10, 26);
const H = 3_600_000;
const A = 'tenant-a';
const B = 'tenant-b';
const hexDir = (tenant: string) => `t-${Buffer.from(tenant).toString('hex')}`;

const TRICKY = [
  'plain words',
  'comma, and "quotes"',
  'two\nlines\r\nhere',
  '=SUM(A1:A2)',
  '-1 dollars',
  "'already quoted",
  '@handle',
  'héllo 🙂',
];

function fixture(): StoredUtterance[] {
  const rows: StoredUtterance[] = [];
  // tenant A, day 1: hours 0, 3 (eight tricky texts), 23; one at the day's last millisecond
  rows.push(stored({ tenantId: A, occurredAtMs: D1 + 5 }));
  TRICKY.forEach((text, i) => {
    rows.push(
      stored({
        tenantId: A,
        occurredAtMs: D1 + 3 * H + i * 1000,
        text,
        role: i % 2 ? 'agent' : 'customer',
        senderExternalId: i === 3 ? '+15551234' : 'agent-7',
      }),
    );
  });
  rows.push(stored({ tenantId: A, occurredAtMs: D2 - 1 }));
  // tenant B, day 1: hour 7 only; day 2: hour 0 (exactly midnight belongs to day 2)
  for (let i = 0; i < 4; i++) rows.push(stored({ tenantId: B, occurredAtMs: D1 + 7 * H + i, callSid: `CA${'b'.repeat(32)}` }));
  rows.push(stored({ tenantId: B, occurredAtMs: D2 }));
  rows.push(stored({ tenantId: A, occurredAtMs: D2 + 12 * H }));
  return rows;
}

async function readDay(storage: FeedStorage, root: string, tenant: string, day: FeedDayRef) {
  const files = await storage.listFiles(tenant, day);
  return files.map((f) => ({
    ...f,
    text: gunzipText(readFileSync(join(root, hexDir(tenant), day.feed, day.version, day.format, day.date, f.interval, f.fileName))),
  }));
}

const day = (date: string, format: 'jsonl' | 'csv'): FeedDayRef => ({ feed: 'utterances', version: '1', format, date });
const expectedRows = (rows: StoredUtterance[], tenant: string, from: number) =>
  rows
    .filter((u) => u.tenantId === tenant && u.occurredAtMs >= from && u.occurredAtMs < from + 24 * H)
    .sort((a, b) => a.occurredAtMs - b.occurredAtMs)
    .map(toUtteranceRow);

t.test('several days and tenants: tree, row counts per file, jsonl and csv equal to what was stored', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const storage = createLocalFeedStorage(root);
  const rows = fixture();
  const source = memorySource(rows);
  const s1 = await exportDay({ source, storage, date: '2026-11-25', maxFileBytes: 1 << 20 });
  const s2 = await exportDay({ source, storage, date: '2026-11-26', maxFileBytes: 1 << 20 });
  t.match(s1, { date: '2026-11-25', feed: 'utterances', version: '1', rows: 14, tenants: 2, files: 8 });
  t.match(s2, { rows: 2, tenants: 2, files: 4 });

  // The tree: <tenant>/<feed>/<version>/<format>/<date>/hr=HH/<files>, dates as links to their run.
  const paths = tree(root).filter((p) => !p.startsWith('.'));
  t.ok(paths.includes(`${hexDir(A)}/utterances/1/jsonl/2026-11-25 ->`));
  t.ok(paths.includes(`${hexDir(B)}/utterances/1/csv/2026-11-26 ->`));
  t.equal(paths.filter((p) => p.endsWith('.gz')).length, 12);
  t.same(tree(join(root, '.staging')), [], 'nothing left in staging');

  t.same(await storage.listFeeds(A), ['utterances']);
  t.same(await storage.listVersions(A, 'utterances'), ['1']);
  t.same(await storage.listFormats(A, 'utterances', '1'), ['csv', 'jsonl']);
  t.same(await storage.listDates(A, 'utterances', '1', 'jsonl'), ['2026-11-25', '2026-11-26']);
  t.same(await storage.listIntervals(A, day('2026-11-25', 'jsonl')), ['hr=00', 'hr=03', 'hr=23']);
  t.same(await storage.listIntervals(B, day('2026-11-25', 'csv')), ['hr=07']);
  t.same(await storage.listIntervals(B, day('2026-11-26', 'csv')), ['hr=00'], 'midnight belongs to the new day');
  t.same(
    (await storage.listFiles(A, day('2026-11-25', 'jsonl'))).map((f) => [f.interval, f.fileName]),
    [
      ['hr=00', 'utterances-2026-11-25-00-0001.jsonl.gz'],
      ['hr=03', 'utterances-2026-11-25-03-0001.jsonl.gz'],
      ['hr=23', 'utterances-2026-11-25-23-0001.jsonl.gz'],
    ],
  );
  t.same(await storage.listDates('tenant-c', 'utterances', '1', 'jsonl'), [], 'a tenant without files sees none');

  for (const [tenant, from, date] of [
    [A, D1, '2026-11-25'],
    [B, D1, '2026-11-25'],
    [A, D2, '2026-11-26'],
    [B, D2, '2026-11-26'],
  ] as const) {
    const want = expectedRows(rows, tenant, from);
    const jsonl = await readDay(storage, root, tenant, day(date, 'jsonl'));
    const jsonRows = jsonl.flatMap((f) =>
      f.text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    );
    t.same(jsonRows, want, `${tenant} ${date} jsonl rows`);
    for (const f of jsonl) t.ok(f.text.endsWith('\n'), 'each line ends with LF');

    const csv = await readDay(storage, root, tenant, day(date, 'csv'));
    const csvRows: string[][] = [];
    for (const f of csv) {
      const records = parseCsv(f.text);
      t.same(records[0], [...UTTERANCE_COLUMNS], 'every csv file starts with the header');
      csvRows.push(...records.slice(1));
    }
    t.same(
      csvRows.map((r) => r.map(unneutralize)),
      want.map((row) => UTTERANCE_COLUMNS.map((c) => String(row[c]))),
      `${tenant} ${date} csv rows`,
    );
  }
  // The hour with the tricky texts: rows per file, and what a spreadsheet would see.
  const hour3 = (await readDay(storage, root, A, day('2026-11-25', 'csv'))).find((f) => f.interval === 'hr=03');
  const cells = parseCsv(hour3?.text ?? '')
    .slice(1)
    .map((r) => r[4]);
  t.equal(cells.length, TRICKY.length);
  t.same(cells, [
    'plain words',
    'comma, and "quotes"',
    'two\nlines\r\nhere',
    "'=SUM(A1:A2)",
    "'-1 dollars",
    "''already quoted",
    "'@handle",
    'héllo 🙂',
  ]);
});

t.test('an hour larger than the file limit is split into parts; every row is in exactly one part', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const storage = createLocalFeedStorage(root);
  const rows = Array.from({ length: 50 }, (_, i) =>
    stored({ tenantId: A, occurredAtMs: D1 + 5 * H + i, text: `row ${i} ${'x'.repeat(100)}` }),
  );
  const summary = await exportDay({ source: memorySource(rows), storage, date: '2026-11-25', maxFileBytes: 2048 });
  const jsonl = await readDay(storage, root, A, day('2026-11-25', 'jsonl'));
  t.ok(jsonl.length > 3, `split into ${jsonl.length} parts`);
  t.same(
    jsonl.map((f) => f.fileName),
    jsonl.map((_, i) => `utterances-2026-11-25-05-${String(i + 1).padStart(4, '0')}.jsonl.gz`),
  );
  for (const f of jsonl) t.ok(Buffer.byteLength(f.text) <= 2048, `${f.fileName}: ${Buffer.byteLength(f.text)} bytes of rows`);
  const counts = jsonl.map((f) => f.text.split('\n').filter(Boolean).length);
  t.equal(
    counts.reduce((a, b) => a + b, 0),
    50,
  );
  t.same(
    jsonl.flatMap((f) =>
      f.text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).utterance_text),
    ),
    rows.map((r) => r.text),
  );
  const csv = await readDay(storage, root, A, day('2026-11-25', 'csv'));
  t.equal(csv.flatMap((f) => parseCsv(f.text).slice(1)).length, 50);
  for (const f of csv) t.ok(f.text.startsWith(CSV_HEADER));
  t.equal(summary.files, jsonl.length + csv.length);
});

t.test('a rerun replaces the day atomically: new content, no leftovers, a reader mid-file keeps the old one whole', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const storage = createLocalFeedStorage(root);
  const first = fixture();
  await exportDay({ source: memorySource(first), storage, date: '2026-11-25', maxFileBytes: 1 << 20 });
  const before = tree(root);
  const open = await storage.openFile(A, day('2026-11-25', 'jsonl'), 'utterances-2026-11-25-03-0001.jsonl.gz');
  t.ok(open);

  // Second run: tenant B has nothing that day any more, tenant A has one row in a new hour.
  const second = [stored({ tenantId: A, occurredAtMs: D1 + 9 * H, text: 'only this' })];
  const summary = await exportDay({ source: memorySource(second), storage, date: '2026-11-25', maxFileBytes: 1 << 20 });
  t.match(summary, { rows: 1, tenants: 1, files: 2 });
  t.same(await storage.listIntervals(A, day('2026-11-25', 'jsonl')), ['hr=09']);
  t.same(await storage.listDates(B, 'utterances', '1', 'jsonl'), [], 'B lost its old day');
  const after = tree(root);
  t.same(
    after.filter((p) => /\.d-2026-11-25-[^/]+\/$/.test(p)).map((p) => p.split('/').slice(0, 4).join('/')),
    [`${hexDir(A)}/utterances/1/csv`, `${hexDir(A)}/utterances/1/jsonl`],
    'one run directory per written tenant/format, the replaced ones deleted',
  );
  t.notOk(
    after.some((p) => before.includes(p) && p.endsWith('.gz')),
    'no file of the first run is left',
  );
  t.same(tree(join(root, '.staging')), []);
  t.notOk(
    after.some((p) => p.includes('.l-')),
    'no temporary links',
  );

  // The reader that opened a file of the first run still reads it whole.
  const chunks: Buffer[] = [];
  for await (const chunk of open?.body ?? []) chunks.push(chunk as Buffer);
  t.equal(gunzipText(Buffer.concat(chunks)).split('\n').filter(Boolean).length, TRICKY.length);
});

t.test('a run that fails midway leaves the day as it was, and nothing staged', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const storage = createLocalFeedStorage(root);
  await exportDay({ source: memorySource(fixture()), storage, date: '2026-11-25', maxFileBytes: 1 << 20 });
  const before = tree(root);
  const failing = {
    async *utterancesCreatedBetween() {
      yield stored({ tenantId: A, occurredAtMs: D1 + H });
      throw new Error('ClickHouse went away');
    },
  };
  await t.rejects(exportDay({ source: failing, storage, date: '2026-11-25', maxFileBytes: 1 << 20 }), /ClickHouse went away/);
  t.same(
    tree(root).filter((p) => !p.startsWith('.staging/')),
    before.filter((p) => !p.startsWith('.staging/')),
  );
  t.same(tree(join(root, '.staging')), []);

  // A store that breaks the ordering contract is refused with a precise error, the day untouched.
  const unordered = memorySource([]);
  unordered.utterancesCreatedBetween = async function* () {
    yield stored({ tenantId: A, occurredAtMs: D1 + 2 * H });
    yield stored({ tenantId: B, occurredAtMs: D1 + 2 * H });
    yield stored({ tenantId: A, occurredAtMs: D1 + 3 * H });
  };
  await t.rejects(exportDay({ source: unordered, storage, date: '2026-11-25', maxFileBytes: 1 << 20 }), {
    code: 'EARSHOT_EXPORT_FAILED',
    message: /tenant tenant-a came back after another tenant/,
  });
  const outside = memorySource([]);
  outside.utterancesCreatedBetween = async function* () {
    yield stored({ tenantId: A, occurredAtMs: D2 + 1 });
  };
  await t.rejects(exportDay({ source: outside, storage, date: '2026-11-25', maxFileBytes: 1 << 20 }), { message: /outside 2026-11-25/ });
  await t.rejects(exportDay({ source: outside, storage, date: '2026-02-30', maxFileBytes: 1 << 20 }), {
    code: 'EARSHOT_USAGE',
    message: /calendar date/,
  });
  t.same(
    tree(root).filter((p) => !p.startsWith('.staging/')),
    before.filter((p) => !p.startsWith('.staging/')),
  );
});

t.test('csv fields: RFC 4180 quoting and formula neutralization', async (t) => {
  t.equal(csvField(12), '12');
  t.equal(csvField('plain'), 'plain');
  t.equal(csvField('a,b'), '"a,b"');
  t.equal(csvField('say "hi"'), '"say ""hi"""');
  t.equal(csvField('a\nb'), '"a\nb"');
  t.equal(csvField('=1+1'), "'=1+1");
  t.equal(csvField('+1'), "'+1");
  t.equal(csvField('@x'), "'@x");
  t.equal(csvField('\tx'), "'\tx");
  t.equal(csvField("'x"), "''x");
  t.equal(csvField('=a,b'), `"'=a,b"`);
  t.equal(csvField('a=b'), 'a=b', 'only a leading sign matters');
});

t.test('storage refuses names that could leave the tree', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const storage = createLocalFeedStorage(root);
  await exportDay({ source: memorySource(fixture()), storage, date: '2026-11-25', maxFileBytes: 1 << 20 });
  t.equal(await storage.openFile(A, day('2026-11-25', 'jsonl'), '../../x'), null);
  t.equal(await storage.openFile(A, { ...day('2026-11-25', 'jsonl'), feed: '..' }, 'utterances-2026-11-25-03-0001.jsonl.gz'), null);
  t.same(await storage.listIntervals(A, { ...day('2026-11-25', 'jsonl'), date: '../..' }), []);
  t.equal(await storage.openFile(B, day('2026-11-25', 'jsonl'), 'utterances-2026-11-25-03-0001.jsonl.gz'), null, "B cannot open A's file");
  const replacement = await storage.replaceDay('utterances', '1', '2026-11-27');
  t.throws(() => replacement.createFile(A, 'jsonl', 'hr=24', 'x.gz'), /invalid file/);
  t.throws(() => replacement.createFile(A, 'jsonl', 'hr=01', '../x'), /invalid file/);
  await replacement.abort();
  await t.rejects(storage.replaceDay('utterances', '1', '2026-13-01'), /invalid day/);
});

t.test('a storage that fails mid-file makes the run fail (no hang, no crash) and aborts the day', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-export-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const real = createLocalFeedStorage(root);
  let aborted = false;
  const failing: FeedStorage = {
    ...real,
    async replaceDay(feed, version, date) {
      const replacement = await real.replaceDay(feed, version, date);
      return {
        createFile: (tenantId, format, interval, fileName) => {
          const file = replacement.createFile(tenantId, format, interval, fileName);
          if (format !== 'csv') return file;
          // The disk fills up after the first chunk of this file.
          let seen = 0;
          const done = new Promise<void>((_, reject) => {
            file.stream.on('data', () => {
              seen += 1;
              if (seen === 1) reject(new Error('ENOSPC: no space left on device'));
            });
          });
          done.catch(() => file.stream.destroy());
          return { stream: file.stream, done };
        },
        commit: () => replacement.commit(),
        abort: async () => {
          aborted = true;
          await replacement.abort();
        },
      };
    },
  };
  const rows = Array.from({ length: 3000 }, (_, i) =>
    stored({ tenantId: A, occurredAtMs: D1 + i * 1000, text: `row ${i} ${'y'.repeat(200)}` }),
  );
  await t.rejects(exportDay({ source: memorySource(rows), storage: failing, date: '2026-11-25', maxFileBytes: 1 << 20 }), /ENOSPC/);
  t.ok(aborted);
  t.same(await real.listDates(A, 'utterances', '1', 'jsonl'), []);
  t.same(tree(join(root, '.staging')), []);
});
