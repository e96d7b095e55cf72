import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { exportDay } from '../../apps/export/src/day-export.js';
import { createLocalFeedStorage } from '../../apps/shared/src/adapters/local-feed-storage.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { StoredUtterance } from '../../apps/shared/src/ports/transcript-store.port.js';
import { ClickHouseTranscriptStore } from '../../apps/shared/src/transcript-store/clickhouse/clickhouse-transcript-store.js';
import type { BenchResult } from './run.js';

/**
 * The daily export of one day holding `--rows` utterances (default 1 000 000), from a
 * ClickHouse database of the bench's own (dropped afterwards) through the real
 * ClickHouseTranscriptStore into feed files (jsonl + csv, gzip) in a temp directory.
 *
 *   npm run bench -- export [--rows 1000000] [--tenants 20]
 *
 * Rows: `--tenants` tenants, 200 calls each, spread over the 24 hours of 2026-11-20, texts of
 * 5-20 words. Reported: insert time (setup, not the export), the store read alone (iterate
 * utterancesCreatedBetween, no files), the writer alone (the same rows from memory), and the
 * whole export (read + rows + gzip + files + commit).
 */
const WORDS = 'yes I would like to check the balance on my account please thank you for calling how can I help today'.split(' ');

function generate(rows: number, tenants: number, dayStartMs: number): UtteranceRecognized[] {
  const out: UtteranceRecognized[] = [];
  for (let i = 0; i < rows; i++) {
    const tenant = i % tenants;
    const call = Math.floor(i / tenants) % 200;
    const callSid = `CA${createHash('md5').update(`${tenant}-${call}`).digest('hex')}`;
    const role = i % 2 ? 'agent' : 'customer';
    const startMs = Math.floor(i / (tenants * 200)) * 3000;
    const utteranceId = `${callSid}:MZ${tenant}:${role}:${startMs * 8}`;
    const words = 5 + (i % 16);
    out.push({
      eventId: createHash('md5').update(utteranceId).digest('hex'),
      utteranceId,
      callSid,
      tenantId: `app_bench_${String(tenant).padStart(3, '0')}`,
      streamId: '11111111-1111-4111-8111-111111111111',
      role,
      senderExternalId: role === 'agent' ? 'agent-7' : 'customer-42',
      track: role === 'agent' ? 'outbound' : 'inbound',
      startMs,
      endMs: startMs + 2500,
      text: Array.from({ length: words }, (_, w) => WORDS[(i + w) % WORDS.length]).join(' '),
      unredactedText: null,
      language: 'en-US',
      tokens: null,
      engine: 'moonshine',
      model: 'tiny',
      // Spread over the day, every row inside it ([00:00, 24:00) UTC).
      speechEndedAtMs: dayStartMs + Math.floor((i / rows) * 86_399_000),
      occurredAtMs: dayStartMs + Math.floor((i / rows) * 86_399_000) + 500,
    });
  }
  return out;
}

export async function run(args: string[]): Promise<BenchResult> {
  const value = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rows = Number(value('rows') ?? 1_000_000);
  const tenants = Number(value('tenants') ?? 20);
  const config = loadEarshotConfig();
  const logger = createLogger({ level: 'warn', name: 'bench-export' });
  const database = `earshot_bench_export_${Date.now().toString(36)}`;
  const store = new ClickHouseTranscriptStore({ url: config.EARSHOT_CLICKHOUSE_URL, database, logger, nodeId: 'bench' });
  const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-export-'));
  const date = '2026-11-20';
  const dayStart = Date.parse(`${date}T00:00:00Z`);
  const loadBefore = loadavg()[0] ?? 0;
  try {
    await store.migrate();
    const events = generate(rows, tenants, dayStart);
    const insertStart = performance.now();
    const BATCH = 50_000;
    for (let i = 0; i < events.length; i += BATCH) {
      await store.writeBatch({ utterances: events.slice(i, i + BATCH), sessions: [], deliveries: [], audit: [] });
    }
    const insertS = (performance.now() - insertStart) / 1000;
    events.length = 0;

    const readStart = performance.now();
    const copy: StoredUtterance[] = [];
    for await (const u of store.utterancesCreatedBetween(dayStart, dayStart + 86_400_000)) copy.push(u);
    const read = copy.length;
    const readS = (performance.now() - readStart) / 1000;

    const exportStart = performance.now();
    const summary = await exportDay({ source: store, storage: createLocalFeedStorage(dir), date, maxFileBytes: 256 * 1024 * 1024 });
    const exportS = (performance.now() - exportStart) / 1000;
    // The writer alone: the same rows from memory (serialization, gzip, files, commit; no store).
    const memoryStart = performance.now();
    const fromMemory = await exportDay({
      source: {
        utterancesCreatedBetween: async function* () {
          yield* copy;
        },
      },
      storage: createLocalFeedStorage(join(dir, 'memory')),
      date,
      maxFileBytes: 256 * 1024 * 1024,
    });
    const memoryS = (performance.now() - memoryStart) / 1000;
    const loadAfter = loadavg()[0] ?? 0;
    return {
      title: `Export of one day with ${rows} utterances (${tenants} tenants) from ClickHouse 18.16 to jsonl + csv gzip files`,
      columns: ['step', 'rows', 'seconds', 'rows/s'],
      rows: [
        ['insert (setup, store.writeBatch of 50 000)', rows, insertS, Math.round(rows / insertS)],
        ['read only (utterancesCreatedBetween)', read, readS, Math.round(read / readS)],
        ['writer only (the same rows from memory: rows, gzip, files)', fromMemory.rows, memoryS, Math.round(fromMemory.rows / memoryS)],
        [
          `export (${summary.files} files, ${(summary.bytes / 2 ** 20).toFixed(1)} MiB gzip)`,
          summary.rows,
          exportS,
          Math.round(summary.rows / exportS),
        ],
      ],
      notes: [
        `ClickHouse and the bench share the 2 cores with other work: load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; numbers are noisy.`,
        'The export writes both formats: every row is serialized twice (JSON and CSV) and gzipped twice (level 6).',
        `The database ${database} and the files were removed afterwards.`,
      ],
    };
  } finally {
    await store.close().catch(() => {});
    const admin = createClient({ url: config.EARSHOT_CLICKHOUSE_URL });
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
