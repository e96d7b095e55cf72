import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FEED_DATE_PATTERN } from '../../shared/src/ports/feed-storage.port.js';

/**
 * Which export node runs a day (distributed mode may run several export nodes for
 * availability). Claims live beside the feed files, in the directory every export node must
 * share anyway: `<dir>/.runs/<date>.claim` is created with O_EXCL (one winner, also on NFS v3+),
 * holds its owner and an expiry, and `<date>.done` records a finished run.
 *
 * Honest limits: a claim is not renewed while its run goes on, so a run longer than
 * EARSHOT_EXPORT_CLAIM_TTL_S can be started a second time by another node; and two nodes that
 * find the same expired claim at the same instant may both take it over. Either way the
 * outcome is still right (each run commits a complete day atomically and the last commit
 * wins), only the work is done twice. An object store would use a conditional PUT instead.
 */
export type ClaimOutcome =
  | { readonly claimed: true }
  | { readonly claimed: false; readonly reason: 'done' | 'held'; readonly owner?: string; readonly expiresAtMs?: number };

export interface RunLedger {
  /** `force` claims a day that is already done (a rerun by hand); a claim held by a live run is never taken. */
  claim(date: string, owner: string, nowMs: number, ttlMs: number, options?: { force?: boolean }): Promise<ClaimOutcome>;
  complete(date: string, owner: string, summary: unknown): Promise<void>;
  /** Gives a claim back after a failed run, so the day can be tried again. */
  release(date: string, owner: string): Promise<void>;
}

interface Claim {
  readonly owner: string;
  readonly expiresAtMs: number;
}

export function createLocalRunLedger(root: string): RunLedger {
  const dir = join(root, '.runs');
  const path = (date: string, kind: 'claim' | 'done'): string => {
    if (!FEED_DATE_PATTERN.test(date)) throw new Error(`run ledger: invalid date ${date}`);
    return join(dir, `${date}.${kind}`);
  };
  const readJson = async <T>(file: string): Promise<T | null> => {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      if (error instanceof SyntaxError) return null; // half-written by a crashed node: treat as absent
      throw error;
    }
  };
  const create = async (file: string, claim: Claim): Promise<boolean> => {
    try {
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify(claim));
        await handle.sync();
      } finally {
        await handle.close();
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  };

  return {
    async claim(date, owner, nowMs, ttlMs, options = {}) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (!options.force && (await readJson(path(date, 'done'))) !== null) return { claimed: false, reason: 'done' };
      const claim: Claim = { owner, expiresAtMs: nowMs + ttlMs };
      if (await create(path(date, 'claim'), claim)) return { claimed: true };
      const held = await readJson<Claim>(path(date, 'claim'));
      if (held && held.expiresAtMs > nowMs) return { claimed: false, reason: 'held', owner: held.owner, expiresAtMs: held.expiresAtMs };
      // Expired (its node died mid-run) or unreadable: take it over.
      await unlink(path(date, 'claim')).catch(() => {});
      if (await create(path(date, 'claim'), claim)) return { claimed: true };
      return { claimed: false, reason: 'held' };
    },
    async complete(date, owner, summary) {
      const temp = join(dir, `.${date}.done.${process.pid}`);
      await writeFile(temp, JSON.stringify({ owner, summary }), { mode: 0o600 });
      await rename(temp, path(date, 'done'));
      await this.release(date, owner);
    },
    async release(date, owner) {
      const held = await readJson<Claim>(path(date, 'claim'));
      if (held?.owner === owner) await unlink(path(date, 'claim')).catch(() => {});
    },
  };
}
