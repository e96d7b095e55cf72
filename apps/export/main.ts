import { hostname } from 'node:os';
import { createLocalFeedStorage, exportDir } from '../shared/src/adapters/local-feed-storage.js';
import type { FeedStorage } from '../shared/src/ports/feed-storage.port.js';
import type { Runtime } from '../shared/src/runtime.js';
import { createTranscriptStore } from '../shared/src/transcript-store/transcript-store.js';
import type { ExportSource } from './src/day-export.js';
import { type ExportOutcome, type ExportRunnerDeps, exportMetrics, runExportDay } from './src/export-runner.js';
import { createLocalRunLedger, type RunLedger } from './src/run-ledger.js';
import { DailyExportScheduler, type SchedulerClock, systemClock } from './src/scheduler.js';

/**
 * The export app (SPEC §3.5): the daily File Exporter job. At EARSHOT_EXPORT_AT_UTC (02:00 by
 * default) it writes the previous UTC day of the `utterances` feed from the transcript store
 * into feed files (EARSHOT_EXPORT_DIR), which the API lists and serves. The only composition
 * root of the app; `earshot export --date` uses `exportRunner` for a day by hand.
 */
export interface ExportApp {
  readonly describe: string;
  /** Runs one day now, as the scheduler would (skipped when done or held by another node). */
  runDay(date: string): Promise<ExportOutcome>;
  stop(): Promise<void>;
}

export interface ExportAppOptions {
  /** Where utterances come from; default the configured transcript store (opened and closed here). */
  readonly source?: ExportSource;
  readonly storage?: FeedStorage;
  readonly ledger?: RunLedger;
  readonly clock?: SchedulerClock;
}

export async function startExportApp(runtime: Runtime, options: ExportAppOptions = {}): Promise<ExportApp> {
  const clock = options.clock ?? systemClock;
  const { deps, close } = await exportRunner(runtime, { ...options, now: () => clock.now() });
  const scheduler = new DailyExportScheduler({
    atUtc: runtime.config.EARSHOT_EXPORT_AT_UTC,
    clock,
    logger: deps.logger,
    runDay: async (date) => {
      await runExportDay(deps, date);
    },
  });
  scheduler.start();
  return {
    describe: `daily at ${runtime.config.EARSHOT_EXPORT_AT_UTC} UTC into ${exportDir(runtime.config)}`,
    runDay: (date) => runExportDay(deps, date),
    stop: async () => {
      await scheduler.stop();
      await close();
    },
  };
}

/** What one export run needs, built from the runtime's config; `close` releases the store it opened. */
export async function exportRunner(
  runtime: Pick<Runtime, 'config' | 'logger' | 'metrics'>,
  options: ExportAppOptions & { now?: () => number } = {},
): Promise<{ deps: ExportRunnerDeps; close(): Promise<void> }> {
  const { config } = runtime;
  const logger = runtime.logger.child({ component: 'export' });
  let source = options.source;
  let close = async (): Promise<void> => {};
  if (!source) {
    const store = createTranscriptStore(config, logger);
    await store.migrate();
    source = store;
    close = () => store.close();
  }
  const dir = exportDir(config);
  return {
    deps: {
      source,
      storage: options.storage ?? createLocalFeedStorage(dir),
      ledger: options.ledger ?? createLocalRunLedger(dir),
      maxFileBytes: config.EARSHOT_EXPORT_MAX_FILE_BYTES,
      claimTtlMs: config.EARSHOT_EXPORT_CLAIM_TTL_S * 1000,
      owner: config.EARSHOT_NODE_ID ?? `${hostname()}:${process.pid}`,
      logger,
      metrics: exportMetrics(runtime.metrics),
      now: options.now,
    },
    close,
  };
}
