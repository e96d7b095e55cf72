import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from '../../logger.js';
import { StoreError } from '../store-error.js';

/**
 * One DuckDB file, opened only while it is being used.
 *
 * DuckDB lets one process at a time open a file for writing (an OS file lock), and a
 * read-only open is refused while a writer holds it. `earshot start` (the store app writing,
 * the API reading) and `earshot export --date` (another process reading) must share the file,
 * so neither may hold it for long:
 * - operations run one at a time per process, through `use()`;
 * - the file is opened on demand and closed after `idleCloseMs` without use, and at the latest
 *   once it has been open `maxHoldMs` (then right after the current operation), and after such
 *   a forced close it waits `yieldMs` before opening again, so another process always gets a
 *   window even while this one is busy;
 * - an open that meets another process's lock retries with jittered backoff for up to
 *   `lockWaitMs` (tries at most 50 ms apart, so it catches the other side's window), then fails with a retriable error (the store app retries the batch; its
 *   offsets are not committed, so nothing is lost).
 * Long reads (the export) are done in bounded chunks, each its own `use()`.
 *
 * Within one process, every store on the same path shares one DuckDbFile (`sharedDuckDbFile`):
 * two DuckDB instances on one file in one process would not see each other's lock.
 */
export interface DuckDbFileOptions {
  readonly idleCloseMs?: number;
  readonly maxHoldMs?: number;
  readonly lockWaitMs?: number;
  readonly yieldMs?: number;
  readonly logger: Logger;
}

export class DuckDbFile {
  private instance: DuckDBInstance | undefined;
  private connection: DuckDBConnection | undefined;
  private openedAt = 0;
  private yieldUntil = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private users = 0;
  /** Opens so far (tests check the file really is released between operations). */
  opens = 0;

  constructor(
    readonly path: string,
    private readonly options: DuckDbFileOptions,
  ) {}

  /** Runs `fn` with the file open, after every earlier `use()` of this process has finished. */
  use<T>(fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      clearTimeout(this.idleTimer);
      const connection = this.connection ?? (await this.open());
      try {
        return await fn(connection);
      } finally {
        if (Date.now() - this.openedAt >= (this.options.maxHoldMs ?? 1000)) {
          this.release();
          this.yieldUntil = Date.now() + (this.options.yieldMs ?? 100);
        } else this.idleTimer = setTimeout(() => void this.enqueue(async () => this.release()), this.options.idleCloseMs ?? 200);
      }
    });
  }

  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async open(): Promise<DuckDBConnection> {
    const wait = this.yieldUntil - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const deadline = Date.now() + (this.options.lockWaitMs ?? 15_000);
    let delay = 10;
    for (;;) {
      try {
        this.instance = await DuckDBInstance.create(this.path);
        this.connection = await this.instance.connect();
        this.openedAt = Date.now();
        this.opens += 1;
        return this.connection;
      } catch (error) {
        this.release();
        const message = (error as Error).message;
        if (!/lock/i.test(message))
          throw new StoreError(`cannot open the embedded store ${this.path}: ${message}`, { retriable: false, cause: error });
        if (Date.now() > deadline) {
          throw new StoreError(
            `the embedded store ${this.path} stayed locked by another process for ${this.options.lockWaitMs ?? 15_000} ms`,
            {
              retriable: true,
              cause: error,
            },
          );
        }
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
        delay = Math.min(delay * 2, 50);
      }
    }
  }

  private release(): void {
    try {
      this.connection?.closeSync();
      this.instance?.closeSync();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'store.embedded_close_failed');
    }
    this.connection = undefined;
    this.instance = undefined;
  }

  acquire(): this {
    this.users += 1;
    return this;
  }

  /** Drops one user; the last one closes the file. */
  async close(): Promise<void> {
    this.users -= 1;
    if (this.users > 0) return;
    files.delete(this.path);
    await this.tail;
    clearTimeout(this.idleTimer);
    this.release();
  }
}

const files = new Map<string, DuckDbFile>();

export function sharedDuckDbFile(path: string, options: DuckDbFileOptions): DuckDbFile {
  let file = files.get(path);
  if (!file) {
    file = new DuckDbFile(path, options);
    files.set(path, file);
  }
  return file.acquire();
}
