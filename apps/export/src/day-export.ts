import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createGzip, type Gzip } from 'node:zlib';
import { EarshotError } from '../../shared/src/errors.js';
import type { DayReplacement, FeedFormat, FeedStorage } from '../../shared/src/ports/feed-storage.port.js';
import type { TranscriptStore } from '../../shared/src/ports/transcript-store.port.js';
import { DAY_MS, utcDayStart } from './utc-day.js';
import { CSV_HEADER, csvLine, feedFileName, jsonlLine, toUtteranceRow, UTTERANCES_FEED } from './utterances-feed.js';

/**
 * One day of the `utterances` feed: streams every tenant's utterances created that UTC day
 * from the transcript store (ordered by tenant, then time), writes gzip files per tenant, hour
 * and format, starting a new part when a file would pass `maxFileBytes` of uncompressed rows,
 * and commits the day in one step (`FeedStorage.replaceDay`). A failure anywhere aborts: the
 * day stays as it was before the run.
 */
export type ExportSource = Pick<TranscriptStore, 'utterancesCreatedBetween'> & {
  /** Optional: when the store can count, progress has a total. */
  countUtterancesCreatedBetween?(fromMs: number, toMs: number): Promise<number>;
};

export interface DayExportOptions {
  readonly source: ExportSource;
  readonly storage: FeedStorage;
  readonly date: string;
  readonly maxFileBytes: number;
  readonly now?: () => number;
  /** Called every `progressEvery` rows and once at the end. */
  readonly onProgress?: (progress: { rows: number; total: number | null }) => void;
  readonly progressEvery?: number;
}

export interface DayExportSummary {
  readonly date: string;
  readonly feed: string;
  readonly version: string;
  readonly rows: number;
  readonly tenants: number;
  readonly files: number;
  /** Compressed bytes written, all formats. */
  readonly bytes: number;
  readonly durationMs: number;
}

const FORMATS: readonly FeedFormat[] = ['jsonl', 'csv'];
/** Rows are gathered into chunks of about this size before they go to gzip (one write per row is slow). */
const CHUNK_CHARS = 64 * 1024;

export async function exportDay(options: DayExportOptions): Promise<DayExportSummary> {
  const now = options.now ?? Date.now;
  const started = now();
  const fromMs = utcDayStart(options.date);
  const toMs = fromMs + DAY_MS;
  const total = options.source.countUtterancesCreatedBetween ? await options.source.countUtterancesCreatedBetween(fromMs, toMs) : null;
  const every = options.progressEvery ?? 10_000;
  const replacement = await options.storage.replaceDay(UTTERANCES_FEED.name, UTTERANCES_FEED.version, options.date);
  const files: Record<FeedFormat, FeedFileWriter | null> = { jsonl: null, csv: null };
  const written: Promise<number>[] = [];
  let rows = 0;
  const tenantsSeen = new Set<string>();
  /** Parts written so far per tenant/hour/format. */
  const partsOf = new Map<string, number>();
  let tenant: string | null = null;
  let hour = -1;
  try {
    for await (const utterance of options.source.utterancesCreatedBetween(fromMs, toMs)) {
      const at = utterance.occurredAtMs;
      if (!(at >= fromMs && at < toMs)) throw orderError(`utterance ${utterance.eventId} created at ${at}, outside ${options.date}`);
      const rowHour = Math.floor((at - fromMs) / 3_600_000);
      if (utterance.tenantId !== tenant) {
        if (tenantsSeen.has(utterance.tenantId)) throw orderError(`tenant ${utterance.tenantId} came back after another tenant`);
        tenantsSeen.add(utterance.tenantId);
        tenant = utterance.tenantId;
        hour = -1;
      } else if (rowHour < hour) {
        throw orderError(`utterance ${utterance.eventId} is older than the one before it`);
      }
      if (rowHour !== hour) {
        for (const format of FORMATS) written.push(...closeFile(files, format));
        hour = rowHour;
      }
      const row = toUtteranceRow(utterance);
      for (const format of FORMATS) {
        const line = format === 'jsonl' ? jsonlLine(row) : csvLine(row);
        let file = files[format];
        if (file && file.rows > 0 && file.bytes + Buffer.byteLength(line) > options.maxFileBytes) {
          written.push(...closeFile(files, format));
          file = null;
        }
        if (!file) {
          const part = (partsOf.get(`${tenant}/${hour}/${format}`) ?? 0) + 1;
          partsOf.set(`${tenant}/${hour}/${format}`, part);
          file = new FeedFileWriter(replacement, tenant, format, hour, feedFileName(options.date, hour, part, format));
          files[format] = file;
          if (format === 'csv') await file.write(CSV_HEADER);
        }
        await file.write(line);
        file.rows += 1;
      }
      rows += 1;
      if (rows % every === 0) options.onProgress?.({ rows, total });
    }
    for (const format of FORMATS) written.push(...closeFile(files, format));
    const bytes = (await Promise.all(written)).reduce((sum, n) => sum + n, 0);
    const committed = await replacement.commit();
    options.onProgress?.({ rows, total: total ?? rows });
    return {
      date: options.date,
      feed: UTTERANCES_FEED.name,
      version: UTTERANCES_FEED.version,
      rows,
      tenants: committed.tenants,
      files: committed.files,
      bytes,
      durationMs: now() - started,
    };
  } catch (error) {
    for (const format of FORMATS) files[format]?.destroy();
    await Promise.allSettled(written);
    await replacement.abort();
    throw error;
  }

  function closeFile(open: Record<FeedFormat, FeedFileWriter | null>, format: FeedFormat): Promise<number>[] {
    const file = open[format];
    open[format] = null;
    return file ? [file.end()] : [];
  }
}

const orderError = (what: string): EarshotError =>
  new EarshotError('EARSHOT_EXPORT_FAILED', `the transcript store broke the export's ordering contract: ${what}`);

/** One gzip file being written: rows gathered into chunks, backpressure honoured. */
class FeedFileWriter {
  bytes = 0;
  rows = 0;
  private pending = '';
  private readonly gzip: Gzip;
  private readonly stored: { stream: Writable; done: Promise<void> };
  private compressedBytes = 0;
  /** Rejects when gzip or the storage fails; every wait races it, so a failure never leaves a wait hanging. */
  private readonly failed: Promise<never>;

  constructor(replacement: DayReplacement, tenantId: string, format: FeedFormat, hour: number, fileName: string) {
    this.stored = replacement.createFile(tenantId, format, `hr=${String(hour).padStart(2, '0')}`, fileName);
    this.gzip = createGzip();
    this.gzip.on('data', (chunk: Buffer) => {
      this.compressedBytes += chunk.length;
    });
    this.gzip.pipe(this.stored.stream);
    this.failed = new Promise<never>((_, reject) => {
      this.gzip.once('error', reject);
      this.stored.done.catch(reject);
    });
    this.failed.catch(() => {}); // observed through the races below
  }

  async write(text: string): Promise<void> {
    this.bytes += Buffer.byteLength(text);
    this.pending += text;
    if (this.pending.length >= CHUNK_CHARS) await this.flush();
  }

  private async flush(): Promise<void> {
    const chunk = this.pending;
    this.pending = '';
    if (chunk.length === 0) return;
    if (!this.gzip.write(chunk)) await Promise.race([once(this.gzip, 'drain'), this.failed]);
  }

  async end(): Promise<number> {
    await this.flush();
    this.gzip.end();
    await Promise.race([this.stored.done, this.failed]);
    return this.compressedBytes;
  }

  destroy(): void {
    this.gzip.destroy();
    this.stored.stream.destroy();
  }
}
