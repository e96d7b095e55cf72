import type { Readable, Writable } from 'node:stream';

/**
 * Where the File Exporter's feed files live (SPEC §3.5): written by the export app once a day,
 * listed and served by the API's `/fileexporter/v1/static/*` routes. The tree, per tenant:
 *
 *   <tenant>/<feed>/<version>/<format>/<YYYY-MM-DD>/hr=HH/<fileName>
 *
 * Every read is scoped by tenant: another tenant's files are not found. File names are unique
 * within a date (they carry the hour), so a file can be named without its interval.
 *
 * Writes go through `replaceDay`: a run stages every file of one feed/version/date for every
 * tenant, then `commit` swaps each tenant's day in at once; a reader sees the old day or the new
 * one, never a mix, and a tenant or format the new run did not write loses its old files.
 *
 * One adapter today, `adapters/local-feed-storage.ts` (a directory; a volume shared by the
 * export and api nodes in distributed mode). An object store fits behind the same port: files
 * under a run prefix, one small "current run" object per tenant/day swapped by a single PUT.
 */
export const FEED_FORMATS = ['jsonl', 'csv'] as const;
export type FeedFormat = (typeof FEED_FORMATS)[number];

/** Names that reach a path: checked here and again by every adapter. */
export const FEED_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
export const FEED_VERSION_PATTERN = /^[1-9][0-9]{0,5}$/;
export const FEED_DATE_PATTERN = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
export const FEED_INTERVAL_PATTERN = /^hr=([01]\d|2[0-3])$/;
export const FEED_FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export interface FeedDayRef {
  readonly feed: string;
  readonly version: string;
  readonly format: FeedFormat;
  readonly date: string;
}

export interface FeedFileInfo {
  readonly interval: string;
  readonly fileName: string;
  readonly bytes: number;
}

export interface FeedFile {
  readonly info: FeedFileInfo;
  /** The file's bytes as stored (gzip), streamed. */
  readonly body: Readable;
}

export interface FeedStorage {
  listFeeds(tenantId: string): Promise<string[]>;
  listVersions(tenantId: string, feed: string): Promise<string[]>;
  listFormats(tenantId: string, feed: string, version: string): Promise<string[]>;
  /** Dates with at least one file, ascending. */
  listDates(tenantId: string, feed: string, version: string, format: FeedFormat): Promise<string[]>;
  /** `hr=HH` intervals of a date, ascending; empty when the date has no files. */
  listIntervals(tenantId: string, day: FeedDayRef): Promise<string[]>;
  /** Files of one interval, or of the whole date when `interval` is undefined; by interval then name. */
  listFiles(tenantId: string, day: FeedDayRef, interval?: string): Promise<FeedFileInfo[]>;
  /** One file, or null when it does not exist for this tenant (or the names are not valid names). */
  openFile(tenantId: string, day: FeedDayRef, fileName: string, interval?: string): Promise<FeedFile | null>;
  /** Starts replacing one date of a feed version, every format and every tenant. */
  replaceDay(feed: string, version: string, date: string): Promise<DayReplacement>;
}

export interface DayReplacement {
  /** A new file of the staged day: write the bytes, end the stream; `done` settles when they are durable. */
  createFile(tenantId: string, format: FeedFormat, interval: string, fileName: string): { stream: Writable; done: Promise<void> };
  /** Swaps the staged day in (tenant by tenant, each atomically) and removes what it replaced. */
  commit(): Promise<{ tenants: number; files: number }>;
  /** Drops everything staged; the day stays as it was. */
  abort(): Promise<void>;
}

export const isFeedDayRef = (day: FeedDayRef): boolean =>
  FEED_NAME_PATTERN.test(day.feed) &&
  FEED_VERSION_PATTERN.test(day.version) &&
  (FEED_FORMATS as readonly string[]).includes(day.format) &&
  FEED_DATE_PATTERN.test(day.date);

/**
 * The feeds the exporter writes, listed to every tenant even before its first file exists
 * (versions and formats are a catalog; dates, intervals and files come from storage).
 */
export const FEED_CATALOG: Readonly<Record<string, Readonly<Record<string, readonly FeedFormat[]>>>> = {
  utterances: { '1': ['jsonl', 'csv'] },
};
