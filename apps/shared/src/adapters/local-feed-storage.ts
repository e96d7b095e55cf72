import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readlink, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Config } from '../config.js';
import {
  type DayReplacement,
  FEED_DATE_PATTERN,
  FEED_FILE_NAME_PATTERN,
  FEED_FORMATS,
  FEED_INTERVAL_PATTERN,
  FEED_NAME_PATTERN,
  FEED_VERSION_PATTERN,
  type FeedDayRef,
  type FeedFile,
  type FeedFileInfo,
  type FeedFormat,
  type FeedStorage,
  isFeedDayRef,
} from '../ports/feed-storage.port.js';

/**
 * `FeedStorage` on a directory:
 *
 *   <root>/t-<hex tenant id>/<feed>/<version>/<format>/<date>          → symlink to .d-<date>-<run>
 *   <root>/t-<hex tenant id>/<feed>/<version>/<format>/.d-<date>-<run>/hr=HH/<file>
 *
 * Why a symlink: rename(2) cannot replace a non-empty directory, but it replaces a symlink
 * atomically. A run writes under `<root>/.staging/<run>/`, moves each tenant's finished day
 * next to the live one, points a new symlink at it and renames that link over `<date>`; a reader
 * resolving `<date>` gets the old complete day or the new one. The replaced directory is then
 * deleted (a download already open keeps its file descriptor). Names starting with "." never
 * show in listings; tenant ids are hex-encoded and every other name is checked against the
 * port's patterns, so no request can name another path. Files 0600, folders 0700, fsynced.
 */
export function exportDir(config: Pick<Config, 'EARSHOT_EXPORT_DIR' | 'EARSHOT_DATA_DIR'>): string {
  return config.EARSHOT_EXPORT_DIR ?? join(config.EARSHOT_DATA_DIR, 'export');
}

const MAX_TENANT_BYTES = 100;
const STAGING = '.staging';
/** Staged runs older than this are a crashed process's leftovers. */
const STALE_STAGING_MS = 24 * 3600_000;

const tenantDirName = (tenantId: string): string | null => {
  const bytes = Buffer.from(tenantId, 'utf8');
  return bytes.length === 0 || bytes.length > MAX_TENANT_BYTES ? null : `t-${bytes.toString('hex')}`;
};

const isMissing = (error: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '');

async function names(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => !name.startsWith('.') && pattern.test(name)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

async function readLinkOrNull(path: string): Promise<string | null> {
  try {
    return await readlink(path);
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

export function createLocalFeedStorage(root: string): FeedStorage {
  const dayDir = (tenantId: string, day: FeedDayRef): string | null => {
    const tenant = tenantDirName(tenantId);
    if (tenant === null || !isFeedDayRef(day)) return null;
    return join(root, tenant, day.feed, day.version, day.format, day.date);
  };

  const listFiles = async (tenantId: string, day: FeedDayRef, interval?: string): Promise<FeedFileInfo[]> => {
    const dir = dayDir(tenantId, day);
    if (dir === null || (interval !== undefined && !FEED_INTERVAL_PATTERN.test(interval))) return [];
    const intervals = interval === undefined ? await names(dir, FEED_INTERVAL_PATTERN) : [interval];
    const files: FeedFileInfo[] = [];
    for (const hour of intervals) {
      for (const fileName of await names(join(dir, hour), FEED_FILE_NAME_PATTERN)) {
        try {
          files.push({ interval: hour, fileName, bytes: (await stat(join(dir, hour, fileName))).size });
        } catch (error) {
          if (!isMissing(error)) throw error; // replaced between the listing and the stat
        }
      }
    }
    return files;
  };

  return {
    async listFeeds(tenantId) {
      const tenant = tenantDirName(tenantId);
      return tenant === null ? [] : names(join(root, tenant), FEED_NAME_PATTERN);
    },
    async listVersions(tenantId, feed) {
      const tenant = tenantDirName(tenantId);
      if (tenant === null || !FEED_NAME_PATTERN.test(feed)) return [];
      return (await names(join(root, tenant, feed), FEED_VERSION_PATTERN)).sort((a, b) => Number(a) - Number(b));
    },
    async listFormats(tenantId, feed, version) {
      const tenant = tenantDirName(tenantId);
      if (tenant === null || !FEED_NAME_PATTERN.test(feed) || !FEED_VERSION_PATTERN.test(version)) return [];
      const formats = new Set<string>(FEED_FORMATS);
      return names(join(root, tenant, feed, version), { test: (name: string) => formats.has(name) } as RegExp);
    },
    async listDates(tenantId, feed, version, format) {
      const tenant = tenantDirName(tenantId);
      if (tenant === null || !isFeedDayRef({ feed, version, format, date: '2000-01-01' })) return [];
      return names(join(root, tenant, feed, version, format), FEED_DATE_PATTERN);
    },
    async listIntervals(tenantId, day) {
      const dir = dayDir(tenantId, day);
      if (dir === null) return [];
      const intervals: string[] = [];
      for (const hour of await names(dir, FEED_INTERVAL_PATTERN)) {
        if ((await names(join(dir, hour), FEED_FILE_NAME_PATTERN)).length > 0) intervals.push(hour);
      }
      return intervals;
    },
    listFiles,
    async openFile(tenantId, day, fileName, interval): Promise<FeedFile | null> {
      if (!FEED_FILE_NAME_PATTERN.test(fileName)) return null;
      const dir = dayDir(tenantId, day);
      if (dir === null) return null;
      const found = (await listFiles(tenantId, day, interval)).find((file) => file.fileName === fileName);
      if (!found) return null;
      try {
        const handle = await open(join(dir, found.interval, fileName), 'r');
        const size = (await handle.stat()).size;
        return { info: { ...found, bytes: size }, body: handle.createReadStream() };
      } catch (error) {
        if (isMissing(error)) return null; // replaced by a rerun since it was listed
        throw error;
      }
    },
    replaceDay: (feed, version, date) => replaceDay(root, feed, version, date),
  };
}

async function replaceDay(root: string, feed: string, version: string, date: string): Promise<DayReplacement> {
  if (!FEED_NAME_PATTERN.test(feed) || !FEED_VERSION_PATTERN.test(version) || !FEED_DATE_PATTERN.test(date)) {
    throw new Error(`feed storage: invalid day ${feed}/${version}/${date}`);
  }
  await removeStaleStaging(root);
  const run = `${Date.now()}-${randomUUID().slice(0, 8)}`;
  const stageRoot = join(root, STAGING, run);
  await mkdir(stageRoot, { recursive: true, mode: 0o700 });
  /** `<tenant dir>/<format>` pairs written by this run. */
  const staged = new Set<string>();
  let files = 0;
  let settled = false;
  /** Every file write of the run, so `abort` removes the staging only once none is still creating files. */
  const writes: { stream: PassThrough; done: Promise<void> }[] = [];

  return {
    createFile(tenantId, format, interval, fileName) {
      const tenant = tenantDirName(tenantId);
      if (settled) throw new Error('feed storage: the day was already committed or aborted');
      if (tenant === null) throw new Error(`feed storage: tenant id of ${Buffer.byteLength(tenantId)} bytes`);
      if (
        !(FEED_FORMATS as readonly string[]).includes(format) ||
        !FEED_INTERVAL_PATTERN.test(interval) ||
        !FEED_FILE_NAME_PATTERN.test(fileName)
      ) {
        throw new Error(`feed storage: invalid file ${format}/${interval}/${fileName}`);
      }
      staged.add(`${tenant}/${format}`);
      files += 1;
      const dir = join(stageRoot, tenant, feed, version, format, date, interval);
      const stream = new PassThrough();
      stream.on('error', () => {}); // a failed write reaches the writer through `done`
      const done = (async () => {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const handle = await open(join(dir, fileName), 'wx', 0o600);
        try {
          for await (const chunk of stream) await handle.write(chunk as Buffer);
          await handle.sync();
        } finally {
          await handle.close();
        }
      })();
      done.catch(() => stream.destroy()); // a writer waiting on 'drain' learns of the failure
      writes.push({ stream, done });
      return { stream, done };
    },

    async commit() {
      if (settled) throw new Error('feed storage: the day was already committed or aborted');
      settled = true;
      const tenants = new Set<string>();
      for (const key of [...staged].sort()) {
        const [tenant, format] = key.split('/') as [string, FeedFormat];
        tenants.add(tenant);
        const formatDir = join(root, tenant, feed, version, format);
        await mkdir(formatDir, { recursive: true, mode: 0o700 });
        const versionName = `.d-${date}-${run}`;
        await rename(join(stageRoot, tenant, feed, version, format, date), join(formatDir, versionName));
        const link = join(formatDir, date);
        const previous = await readLinkOrNull(link);
        const tempLink = join(formatDir, `.l-${date}-${run}`);
        await symlink(versionName, tempLink);
        await rename(tempLink, link); // the atomic step: readers now see the new day
        if (previous !== null && previous !== versionName) await rm(join(formatDir, previous), { recursive: true, force: true });
      }
      // Tenants and formats that had this day before but not in this run: their old files go.
      for (const tenant of await names(root, /^t-[0-9a-f]+$/)) {
        for (const format of FEED_FORMATS) {
          if (staged.has(`${tenant}/${format}`)) continue;
          const formatDir = join(root, tenant, feed, version, format);
          const previous = await readLinkOrNull(join(formatDir, date));
          if (previous === null) continue;
          await unlink(join(formatDir, date));
          await rm(join(formatDir, previous), { recursive: true, force: true });
        }
      }
      await rm(stageRoot, { recursive: true, force: true });
      return { tenants: tenants.size, files };
    },

    async abort() {
      settled = true;
      for (const write of writes) write.stream.destroy();
      await Promise.allSettled(writes.map((write) => write.done));
      await rm(stageRoot, { recursive: true, force: true });
    },
  };
}

async function removeStaleStaging(root: string): Promise<void> {
  const dir = join(root, STAGING);
  let runs: string[];
  try {
    runs = await readdir(dir);
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  for (const run of runs) {
    const startedAt = Number(run.split('-')[0]);
    if (Number.isFinite(startedAt) && Date.now() - startedAt > STALE_STAGING_MS) await rm(join(dir, run), { recursive: true, force: true });
  }
}
