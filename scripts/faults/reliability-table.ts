import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Prints the table of docs/reliability.md from the fault suite's results
 * (`.earshot/reliability/results.jsonl`, one JSON line per scenario run, written by
 * test/faults/support/scenario.ts): the latest run of each scenario.
 *
 *   node --import tsx scripts/faults/reliability-table.ts
 */
interface Outcome {
  scenario: string;
  calls: number;
  expected: number;
  stored: number;
  lost: number;
  duplicated: number;
  delivered: number;
  redelivered: number;
  /** Stored utterances the webhook never got, by their last DeliveryAttempted outcome. */
  webhookMissing?: Record<string, number>;
  outageMs?: number | null;
  recoveryMs: number | null;
  wer: { customer: number; agent: number };
  at: string;
  /** A loss the scenario allows (ingest died, Twilio reconnected): `lost` excludes it. */
  gap?: { mediaMs: number; utterances: number; lost: number };
}

const file = join(new URL('../../', import.meta.url).pathname, '.earshot/reliability/results.jsonl');
if (!existsSync(file)) {
  console.error(`no results yet: run the fault suite first (npm test -- test/faults), which writes ${file}`);
  process.exit(1);
}
const latest = new Map<string, Outcome>();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const outcome = JSON.parse(line) as Outcome;
  latest.set(outcome.scenario, outcome);
}
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
console.log(
  '| scenario | calls | utterances expected | stored | lost | duplicated | webhook: delivered (redelivered) | outage | recovery after it | WER customer / agent | run at |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const o of latest.values()) {
  const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
  // A gap's own losses are shown beside the wrong ones: "0 (+1 of 2 spoken in the 4.4 s gap)".
  const lost = o.gap ? `${o.lost} (+${o.gap.lost} of ${o.gap.utterances} spoken in the ${seconds(o.gap.mediaMs)} gap)` : `${o.lost}`;
  console.log(
    `| ${o.scenario} | ${o.calls} | ${o.expected} | ${o.stored} | ${lost} | ${o.duplicated} | ${o.delivered} (${o.redelivered})${missing(o.webhookMissing)} | ${seconds(o.outageMs)} | ${seconds(o.recoveryMs)} | ${pct(o.wer.customer)} / ${pct(o.wer.agent)} | ${o.at.slice(0, 16)} |`,
  );
}

/** ", 2 missing: dropped: waited over ..." beside the webhook count, when some never arrived. */
function missing(counts: Record<string, number> | undefined): string {
  const entries = Object.entries(counts ?? {});
  if (entries.length === 0) return '';
  return `; missing: ${entries.map(([why, n]) => `${n} ${why.replace(/\|/g, '/')}`).join(', ')}`;
}
