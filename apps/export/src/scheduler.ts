import type { Logger } from '../../shared/src/logger.js';
import { DAY_MS, previousUtcDate } from './utc-day.js';

/**
 * Runs the export once a day at a fixed UTC time (EARSHOT_EXPORT_AT_UTC, default 02:00) for
 * the previous UTC day. The clock is injected so tests move time by hand.
 *
 * - Started after the day's time has passed (a restart at 02:30): runs the previous day at once
 *   (the run ledger makes that a no-op when it was already done).
 * - A failed run is retried every `retryMs` until it succeeds or the next day's run is due.
 * - Each fire computes its date from the time it was scheduled for, not from when the timer
 *   actually fired, so a late timer still exports the right day.
 */
export interface SchedulerClock {
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref?.();
    return () => clearTimeout(timer);
  },
};

export interface DailySchedulerOptions {
  /** "HH:MM", UTC. */
  readonly atUtc: string;
  readonly clock: SchedulerClock;
  readonly runDay: (date: string) => Promise<void>;
  readonly logger: Logger;
  readonly retryMs?: number;
}

export function timeOfDayMs(atUtc: string): number {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(atUtc);
  if (!match) throw new Error(`export time must be HH:MM (UTC), not '${atUtc}'`);
  return (Number(match[1]) * 60 + Number(match[2])) * 60_000;
}

/** The first fire time strictly after `nowMs`. */
export function nextFireAt(nowMs: number, atUtc: string): number {
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS + timeOfDayMs(atUtc);
  return today > nowMs ? today : today + DAY_MS;
}

export class DailyExportScheduler {
  private cancel: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: DailySchedulerOptions) {}

  /** The time of the next planned run (for `describe` and tests). */
  nextRunAt: number | null = null;

  start(): void {
    const { clock, atUtc } = this.options;
    const now = clock.now();
    const todaysRun = nextFireAt(now, atUtc) - DAY_MS;
    if (todaysRun <= now && todaysRun >= Math.floor(now / DAY_MS) * DAY_MS) this.fire(todaysRun);
    else this.arm(nextFireAt(now, atUtc));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
    await this.running;
  }

  private arm(at: number, retryDate?: string): void {
    if (this.stopped) return;
    this.nextRunAt = at;
    this.cancel = this.options.clock.setTimeout(() => this.fire(at, retryDate), Math.max(0, at - this.options.clock.now()));
  }

  private fire(scheduledAt: number, retryDate?: string): void {
    if (this.stopped) return;
    this.cancel = null;
    const date = retryDate ?? previousUtcDate(scheduledAt);
    const { clock, atUtc, logger } = this.options;
    this.running = this.options.runDay(date).then(
      () => this.arm(nextFireAt(Math.max(clock.now(), scheduledAt), atUtc)),
      (error: unknown) => {
        logger.error({ err: error, date }, 'export.scheduled_run_failed');
        const next = nextFireAt(Math.max(clock.now(), scheduledAt), atUtc);
        const retryAt = clock.now() + (this.options.retryMs ?? 600_000);
        if (retryAt < next) this.arm(retryAt, date);
        else this.arm(next);
      },
    );
  }
}
