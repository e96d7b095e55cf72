import { resolve } from 'node:path';
import { exportRunner } from '../../../export/main.js';
import type { DayExportSummary } from '../../../export/src/day-export.js';
import { runExportDay } from '../../../export/src/export-runner.js';
import { utcDayStart } from '../../../export/src/utc-day.js';
import { exportDir } from '../../../shared/src/adapters/local-feed-storage.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError, isEarshotError } from '../../../shared/src/errors.js';
import { createLogger } from '../../../shared/src/logger.js';
import { createMetricsRegistry } from '../../../shared/src/metrics.js';
import { parseOptions } from '../args.js';

const USAGE = `Usage: earshot export --date YYYY-MM-DD [--json]

Runs the daily File Exporter by hand for one UTC day: every tenant's utterances created that
day, read from the transcript store (ClickHouse in distributed mode, the embedded store
otherwise), written as the 'utterances' feed in jsonl and csv (gzip) under EARSHOT_EXPORT_DIR
(default <EARSHOT_DATA_DIR>/export). A day exported before is replaced at once: readers see
the old files or the new ones, never a mix. Refused while another node is exporting that day.

  --date YYYY-MM-DD   the UTC day to export
  --json              print the summary as one JSON object

A progress bar goes to stderr when it is a terminal; the summary goes to stdout.`;

export async function exportCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(argv, { date: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new EarshotError('EARSHOT_USAGE', `unexpected argument '${positionals[0]}'\n\n${USAGE}`);
  if (values.date === undefined) throw new EarshotError('EARSHOT_USAGE', `--date is required\n\n${USAGE}`);
  const date = values.date;
  utcDayStart(date);

  const config = loadConfig();
  // Logs to stderr, warnings and worse only: stdout is the summary (a program reads it with --json).
  const logger = createLogger({ level: 'warn', name: 'earshot-export', destination: process.stderr });
  const progress = process.stderr.isTTY ? new ProgressBar(process.stderr, date) : null;
  let summary: DayExportSummary;
  try {
    const { deps, close } = await exportRunner({
      config,
      logger,
      metrics: createMetricsRegistry({ app: 'export', defaultMetrics: false }),
    });
    try {
      const outcome = await runExportDay(deps, date, { force: true, onProgress: (p) => progress?.update(p.rows, p.total) });
      if (outcome.outcome !== 'exported')
        throw new EarshotError('EARSHOT_EXPORT_FAILED', `the export of ${date} was skipped (${outcome.reason})`);
      summary = outcome.summary;
    } finally {
      progress?.clear();
      await close();
    }
  } catch (error) {
    if (isEarshotError(error)) throw error;
    const reason = ((error as Error).message ?? String(error)).split('\n')[0];
    throw new EarshotError('EARSHOT_EXPORT_FAILED', `export of ${date} failed: ${reason}`, { cause: error });
  }
  if (values.json) {
    console.log(JSON.stringify({ ...summary, dir: resolve(exportDir(config)) }));
  } else {
    console.log(
      `Exported ${summary.feed} v${summary.version} for ${summary.date}: ${summary.rows} utterances, ${summary.tenants} tenant(s), ${summary.files} file(s), ${summary.bytes} bytes in ${(summary.durationMs / 1000).toFixed(1)} s`,
    );
    console.log(`  into ${resolve(exportDir(config))}`);
  }
  return 0;
}

/** One line redrawn in place: a bar when the total is known, a row count otherwise. */
class ProgressBar {
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly date: string,
  ) {}

  update(rows: number, total: number | null): void {
    const now = Date.now();
    if (now - this.lastDraw < 100 && (total === null || rows < total)) return;
    this.lastDraw = now;
    const width = 30;
    if (total !== null && total > 0) {
      const done = Math.min(1, rows / total);
      const filled = Math.round(done * width);
      this.out.write(
        `\rexport ${this.date} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(done * 100).toFixed(0).padStart(3)}% ${rows}/${total} rows`,
      );
    } else {
      this.out.write(`\rexport ${this.date} ${rows} rows`);
    }
  }

  clear(): void {
    this.out.write('\r\x1b[2K');
  }
}
