import { EarshotError } from '../../shared/src/errors.js';
import type { Logger } from '../../shared/src/logger.js';
import { Counter, Gauge, type Registry } from '../../shared/src/metrics.js';
import type { FeedStorage } from '../../shared/src/ports/feed-storage.port.js';
import { type DayExportSummary, type ExportSource, exportDay } from './day-export.js';
import type { RunLedger } from './run-ledger.js';
import { utcDayStart } from './utc-day.js';

/**
 * One export of one day with its bookkeeping: claim the day in the run ledger (so one export
 * node runs it), export, record it done, count it. Used by the scheduler and `earshot export`.
 */
export interface ExportRunnerDeps {
  readonly source: ExportSource;
  readonly storage: FeedStorage;
  readonly ledger: RunLedger;
  readonly maxFileBytes: number;
  readonly claimTtlMs: number;
  /** Who holds a claim (host and pid by default); shown to whoever finds the day held. */
  readonly owner: string;
  readonly logger: Logger;
  readonly metrics: ExportMetrics;
  readonly now?: () => number;
}

export type ExportOutcome =
  | { readonly outcome: 'exported'; readonly summary: DayExportSummary }
  | { readonly outcome: 'skipped'; readonly date: string; readonly reason: 'done' | 'held' };

export interface ExportMetrics {
  readonly runs: Counter<'outcome'>;
  readonly rows: Counter<never>;
  readonly lastSuccess: Gauge<never>;
}

export function exportMetrics(registry: Registry): ExportMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    runs:
      existing('earshot_export_runs_total') ??
      new Counter({
        name: 'earshot_export_runs_total',
        help: 'Export runs of a day, by outcome (exported, skipped: done or run by another node, failed).',
        labelNames: ['outcome'],
        registers: [registry],
      }),
    rows:
      existing('earshot_export_rows_total') ??
      new Counter({ name: 'earshot_export_rows_total', help: 'Utterance rows written to feed files.', registers: [registry] }),
    lastSuccess:
      existing('earshot_export_last_success_timestamp_seconds') ??
      new Gauge({
        name: 'earshot_export_last_success_timestamp_seconds',
        help: 'When the last export run finished successfully (alert when it is over a day old).',
        registers: [registry],
      }),
  };
}

export async function runExportDay(
  deps: ExportRunnerDeps,
  date: string,
  options: { force?: boolean; onProgress?: (p: { rows: number; total: number | null }) => void } = {},
): Promise<ExportOutcome> {
  utcDayStart(date); // a precise message for a bad date before anything is claimed
  const now = deps.now ?? Date.now;
  const claim = await deps.ledger.claim(date, deps.owner, now(), deps.claimTtlMs, { force: options.force });
  if (!claim.claimed) {
    deps.metrics.runs.inc({ outcome: 'skipped' });
    if (options.force && claim.reason === 'held') {
      const until = claim.expiresAtMs ? ` (its claim expires at ${new Date(claim.expiresAtMs).toISOString()})` : '';
      throw new EarshotError('EARSHOT_EXPORT_FAILED', `another export of ${date} is running on ${claim.owner ?? 'another node'}${until}`);
    }
    deps.logger.info({ date, reason: claim.reason, owner: claim.owner }, 'export.day_skipped');
    return { outcome: 'skipped', date, reason: claim.reason };
  }
  deps.logger.info({ date }, 'export.day_started');
  try {
    const summary = await exportDay({
      source: deps.source,
      storage: deps.storage,
      date,
      maxFileBytes: deps.maxFileBytes,
      now,
      onProgress: options.onProgress,
    });
    await deps.ledger.complete(date, deps.owner, summary);
    deps.metrics.runs.inc({ outcome: 'exported' });
    deps.metrics.rows.inc(summary.rows);
    deps.metrics.lastSuccess.set(now() / 1000);
    deps.logger.info({ ...summary }, 'export.day_exported');
    return { outcome: 'exported', summary };
  } catch (error) {
    deps.metrics.runs.inc({ outcome: 'failed' });
    await deps.ledger.release(date, deps.owner).catch(() => {});
    throw error;
  }
}
