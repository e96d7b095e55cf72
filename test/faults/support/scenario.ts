import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import kafkajs from 'kafkajs';
import type { Test } from 'tap';
import type { DeliveryAttempted } from '../../../apps/shared/src/events.js';
import { readToEnd } from '../../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import type { AppProcess } from '../../support/app-process.js';
import { type StoredRow, type Topology, waitStored } from '../../support/topology.js';
import { sleep } from '../../support/wait.js';

/**
 * One fault scenario of SPEC §9's promise: a live call runs through the distributed
 * topology while `fault` disturbs it; afterwards the call's utterances in ClickHouse are
 * compared with the corpus (count, distinct ids, WER against the undisturbed baseline) and
 * with what the webhook received. Each outcome is appended as a JSON line to
 * `.earshot/reliability/results.jsonl`, from which docs/reliability.md's table is made
 * (`node --import tsx scripts/faults/reliability-table.ts`).
 */
const ROOT = new URL('../../../', import.meta.url).pathname;
export const RESULTS_FILE = join(ROOT, '.earshot/reliability/results.jsonl');

export interface Outcome {
  readonly scenario: string;
  readonly calls: number;
  readonly expected: number;
  readonly stored: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Webhook posts of the call (distinct utterances; a redelivery after a crash counts once here). */
  readonly delivered: number;
  readonly redelivered: number;
  /** From the fault's start to its end (the server back, the process restarted and ready). */
  readonly outageMs: number | null;
  /** From the fault's end until the store gained a new utterance of the call (null: no fault, or nothing was pending). */
  readonly recoveryMs: number | null;
  readonly wer: { readonly customer: number; readonly agent: number };
  readonly at: string;
  /** The disturbed call (a scenario with several calls: the one transcribed through it). */
  readonly callSid?: string;
  /** Stored utterances the webhook did not get, by their last DeliveryAttempted outcome (`dropped: <why>`). */
  readonly webhookMissing?: Readonly<Record<string, number>>;
  /**
   * A loss the scenario allows (Twilio reconnecting after ingest died: the audio of the gap never
   * reached us): how much call audio, how many utterances were spoken (partly) in it, and how
   * many of those left no row. `lost` counts only the utterances that had to be stored.
   */
  readonly gap?: { readonly mediaMs: number; readonly utterances: number; readonly lost: number };
}

export interface FaultContext {
  readonly topology: Topology;
  readonly callSid: string;
  /** Call when the disturbance begins. */
  markFault(): void;
  /** Call when it ends (server back, process restarted); recovery is measured from here. Default: when `fault` resolves. */
  markRestored(): void;
}

export async function runScenario(
  t: Test,
  topology: Topology,
  scenario: string,
  fault: ((ctx: FaultContext) => Promise<void>) | null,
  options: {
    speed?: number;
    /** Calls in the scenario (the one checked plus others the fault plays); default 1. */
    calls?: number;
    /** false: a baseline for this file's comparisons only, not a row of the table. Default true. */
    record?: boolean;
  } = {},
): Promise<Outcome> {
  const { callSid, done } = topology.playCall({ speed: options.speed ?? 2 });
  let faultAt: number | null = null;
  let restoredAt: number | null = null;
  let recoveredAt: number | null = null;
  let watching = true;
  // Progress watcher: the first new stored utterance after the fault's end marks recovery.
  const watcher = (async () => {
    let before: number | null = null;
    while (watching) {
      if (restoredAt !== null) {
        const count = (await topology.stored(callSid).catch(() => [] as StoredRow[])).length;
        before ??= count;
        if (count > before) {
          recoveredAt = Date.now();
          return;
        }
      }
      await sleep(200);
    }
  })();
  const disturbance = fault?.({
    topology,
    callSid,
    markFault: () => (faultAt = Date.now()),
    markRestored: () => (restoredAt = Date.now()),
  });
  void disturbance?.then(() => (restoredAt ??= Date.now()));
  const [result] = await Promise.all([done, disturbance]);
  t.equal(result.start?.status, 200, `${scenario}: start-streaming accepted`);
  const rows = await waitStored(topology, callSid, 120_000).catch(() => topology.stored(callSid));
  // Late duplicates (a replay) would show up after the count is reached: give them time.
  await sleep(2000);
  const final = await topology.stored(callSid);
  watching = false;
  await watcher;
  // The webhooks consumer recovers from an outage on its own schedule (kafkajs restarts it with
  // backoff), so it may still be working through the call when the store is done: wait until every
  // stored utterance has reached the receiver or has a final outcome, or 60 s have passed.
  const webhookMissing =
    (topology.processes.get('webhooks')?.length ?? 0) > 0 ? await settledDeliveries(topology, callSid, final, 60_000) : undefined;
  // Counted after the webhooks settled (above), not before: late deliveries are deliveries.
  const posts = topology.posted(callSid);
  const distinctPosts = new Set(posts.map((p) => `${p.sender.role}:${p.autotranscribeResponse.start}`)).size;
  const byTurns = topology.turnCheck(final);
  const outcome: Outcome = {
    scenario,
    calls: options.calls ?? 1,
    expected: topology.expectedUtterances,
    stored: final.length,
    lost: byTurns.lost,
    duplicated: byTurns.duplicated,
    delivered: distinctPosts,
    redelivered: posts.length - distinctPosts,
    outageMs: faultAt !== null && restoredAt !== null ? restoredAt - faultAt : null,
    recoveryMs: restoredAt !== null && recoveredAt !== null ? recoveredAt - restoredAt : null,
    wer: topology.werOf(final.length > 0 ? final : rows),
    at: new Date().toISOString(),
    callSid,
    ...(webhookMissing ? { webhookMissing } : {}),
  };
  if (options.record !== false) recordOutcome(outcome);
  if (outcome.lost > 0 || outcome.duplicated > 0 || Object.keys(webhookMissing ?? {}).some((why) => !why.startsWith('dropped')))
    dumpOutputs(t, topology, scenario, { callSid, stored: final });
  t.comment(JSON.stringify(outcome));
  t.equal(outcome.lost, 0, `${scenario}: no utterance lost`);
  t.equal(outcome.duplicated, 0, `${scenario}: no utterance duplicated in the store`);
  t.equal(new Set(final.map((r) => r.utterance_id)).size, final.length, `${scenario}: one row per utterance id`);
  // Every stored utterance the webhook did not get must have been dropped by a documented rule.
  if (webhookMissing)
    t.ok(
      Object.keys(webhookMissing).every((why) => why.startsWith('dropped')),
      `${scenario}: every utterance the webhook did not get was dropped by the documented rules (${JSON.stringify(webhookMissing)})`,
    );
  return outcome;
}

/** WER within one point of the baseline, per role. */
export function assertWer(t: Test, outcome: Outcome, baseline: Outcome): void {
  for (const role of ['customer', 'agent'] as const) {
    const delta = outcome.wer[role] - baseline.wer[role];
    t.ok(
      delta <= 0.01,
      `${outcome.scenario}: ${role} WER ${(outcome.wer[role] * 100).toFixed(1)} % (baseline ${(baseline.wer[role] * 100).toFixed(1)} %)`,
    );
  }
}

/** The asr process that owns the call (its partition of the call-events topic), from its `asr.partitions_assigned` log lines. */
export function asrOwnerOf(topology: Topology, callSid: string): AppProcess {
  const partitions = topology.runtime.config.EARSHOT_TOPIC_PARTITIONS;
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  const partition = partitioner({
    topic: 'call-events',
    partitionMetadata: Array.from({ length: partitions }, (_, i) => ({
      partitionErrorCode: 0,
      partitionId: i,
      leader: 1,
      replicas: [1],
      isr: [1],
    })),
    message: { key: callSid, value: null },
  });
  const candidates = topology.processes.get('asr') ?? [];
  for (const p of candidates) {
    const assigned = p
      .output()
      .split('\n')
      .filter((line) => line.includes('asr.partitions_assigned'))
      .map((line) => (JSON.parse(line) as { partitions: number[] }).partitions)
      .at(-1);
    if (assigned?.includes(partition)) return p;
  }
  throw new Error(`no asr process reports partition ${partition} of call ${callSid}`);
}

/** Appends a scenario's outcome to the results file (a row of docs/reliability.md's table). */
export function recordOutcome(outcome: Outcome): void {
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  appendFileSync(RESULTS_FILE, `${JSON.stringify(outcome)}\n`);
}

/** What each process said, next to the results file, for whoever has to find out why a scenario lost or duplicated. */
export function dumpOutputs(t: Test, topology: Topology, scenario: string, facts: unknown): void {
  const dump = join(dirname(RESULTS_FILE), `${scenario.replace(/[^a-z0-9]+/gi, '-')}.log`);
  const outputs = [...topology.processes.entries()].flatMap(([app, ps]) =>
    ps.map((p) => `==== ${app} (pid ${p.child.pid})\n${p.output()}`),
  );
  writeFileSync(dump, `${JSON.stringify(facts, null, 1)}\n${outputs.join('\n')}`);
  t.comment(`process outputs: ${dump}`);
}

/** `missingDeliveries`, asked again until nothing is missing without a final outcome, or `timeoutMs` passed. */
async function settledDeliveries(
  topology: Topology,
  callSid: string,
  stored: readonly StoredRow[],
  timeoutMs: number,
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = await missingDeliveries(topology, callSid, stored);
    if (Object.keys(missing).every((why) => why.startsWith('dropped')) || Date.now() >= deadline) return missing;
    await sleep(500);
  }
}

/**
 * The stored utterances of the call that the receiver never got (by the `earshot-utterance-id`
 * header), counted by their last DeliveryAttempted outcome on Kafka: `dropped: <reason>` is the
 * documented timeout/stale rule; anything else (or no outcome at all) is a delivery lost.
 */
async function missingDeliveries(topology: Topology, callSid: string, stored: readonly StoredRow[]): Promise<Record<string, number>> {
  const postedIds = new Set(
    topology.receiver.received
      .filter((r) => (r.body as { externalConversationId?: string } | undefined)?.externalConversationId === callSid)
      .map((r) => String(r.headers['earshot-utterance-id'])),
  );
  const missing = stored.filter((row) => !postedIds.has(row.utterance_id));
  if (missing.length === 0) return {};
  const deliveries = (await readToEnd(topology.runtime.eventLog, TOPICS.deliveries))
    .map((r) => r.value as DeliveryAttempted)
    .filter((d) => d.callSid === callSid);
  const counts: Record<string, number> = {};
  for (const row of missing) {
    const last = deliveries.filter((d) => d.utteranceId === row.utterance_id).at(-1);
    const why = last ? (last.outcome === 'dropped' ? `dropped: ${last.error ?? 'no reason given'}` : last.outcome) : 'no outcome recorded';
    counts[why] = (counts[why] ?? 0) + 1;
  }
  return counts;
}
