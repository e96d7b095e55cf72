import { type ChildProcess, fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startApi } from '../../apps/api/main.js';
import { startAsrApp } from '../../apps/asr/main.js';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { startIngest } from '../../apps/ingest/main.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { createTestApp } from '../../test/support/runtime.js';
import { type CorpusTrack, generateTestAudio } from '../test-audio/corpus.js';
import { pooledWer } from '../test-audio/wer.js';
import { findBrokerPid, machineTicks, openRuntime, pct, processTicks, sleep, TICKS, until } from './latency.bench.js';
import type { BenchResult } from './run.js';
import { benchRun } from './support/bench-env.js';
import type { PlayCommand, PlayerMessage } from './support/call-player.js';
import { dropNamespace } from './support/namespace.js';

/**
 * Capacity of one gateway process (api + ingest + asr, real model, production Kafka settings,
 * real broker) on this machine: the largest number of concurrent real-time two-party calls for
 * which the asr keeps up, found by a ladder of steps (stops at the first step that misses).
 *
 *   npm run bench -- capacity [--calls 6,10,14,18,22,26] [--measure-s 60] [--workers N] [--quick]
 *
 * A step of N calls: a child process (support/call-player.ts) keeps N calls going, slot i
 * starting at i/N of the call's length (43 s) so that ends of speech are spread evenly, each
 * slot replaying the corpus call with a new Call SID until the step ends. Only utterances whose
 * true end of speech falls after that ramp (all N calls running) are measured, for
 * `--measure-s` seconds. A step holds when:
 * - p95 end of speech → utterance event readable on earshot.utterances.v1 ≤ 1 s,
 * - every scripted utterance of every call arrived (within 20 s after the step),
 * - the model queue is bounded: its mean over the last third of the window is not above the
 *   first third's by more than one job (a queue that grows means the model is behind),
 * - the players kept real time (frame lag p99 < 100 ms), else the row measures less load.
 * `--quick`: steps 6,12,18 with 20 s windows (~4 min).
 */
const DRAIN_TIMEOUT_MS = 20_000;
const P95_LIMIT_MS = 1000;

interface Options {
  readonly calls: readonly number[];
  readonly measureS: number;
  readonly workers: number | undefined;
  readonly quick: boolean;
}

function parse(args: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const quick = args.includes('--quick');
  const calls = (value('calls') ?? (quick ? '6,12,18' : '6,10,14,18,22,26')).split(',').map(Number);
  if (calls.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--calls: a comma-separated list of positive integers');
  const measureS = Number(value('measure-s') ?? (quick ? 20 : 60));
  if (!(measureS >= 5)) throw new Error('--measure-s: at least 5');
  const workers = value('workers');
  return { calls, measureS, workers: workers === undefined ? undefined : Number(workers), quick };
}

interface StepResult {
  readonly calls: number;
  readonly callsPlayed: number;
  readonly measured: number;
  readonly missing: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly speechEndedP95: number;
  readonly queueFirst: number;
  readonly queueLast: number;
  readonly queuePeak: number;
  readonly wer: number;
  readonly cpuPct: number;
  readonly playerPct: number;
  readonly brokerPct: number;
  readonly othersPct: number;
  readonly rssPeakMiB: number;
  readonly lagP99: number;
  readonly failures: readonly string[];
  readonly held: boolean;
  readonly why: string;
}

const progress = (line: string) => console.error(`capacity: ${line}`);

export async function run(args: string[]): Promise<BenchResult> {
  const o = parse(args);
  const began = Date.now();
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR, { log: (line) => progress(`test-audio: ${line}`) });
  const script = corpus.call.tracks;
  const callMs = corpus.call.durationMs;
  const { config, namespace, dataDir } = benchRun('capacity', o.workers !== undefined ? { EARSHOT_ASR_WORKERS: String(o.workers) } : {});
  await ensureModels(config.EARSHOT_MODELS_DIR);
  const stops: (() => Promise<void>)[] = [];
  const steps: StepResult[] = [];
  let idleRssMiB = 0;
  let describe = '';
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(config);
    const asr = await startAsrApp(runtime);
    describe = asr.describe;
    stops.push(() => asr.stop());
    const ingest = await startIngest(runtime);
    stops.push(() => ingest.stop());
    const api = await startApi({ ...runtime, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
    stops.push(() => api.stop());
    const tenant = await createTestApp(runtime, 'capacity bench');

    const arrivals = new Map<string, { value: UtteranceRecognized; at: number }[]>();
    const reader = runtime.eventLog.createConsumer({ groupId: 'capacity-bench-reader', topics: [TOPICS.utterances], fromBeginning: true });
    await reader.run(async (batch) => {
      const at = Date.now();
      for (const record of batch.records) {
        const list = arrivals.get(record.key) ?? [];
        list.push({ value: record.value as UtteranceRecognized, at });
        arrivals.set(record.key, list);
      }
    });
    stops.unshift(() => reader.stop());
    progress(`gateway up (${asr.describe}), Kafka namespace ${namespace}`);

    // Warm-up (not measured): one call at 4x.
    await playStep({ ...tenant, apiUrl: api.url }, 1, 1000, 0, script, () => undefined);
    await sleep(3000);
    idleRssMiB = process.memoryUsage.rss() / 2 ** 20;

    const broker = findBrokerPid();
    for (const n of o.calls) {
      progress(`${n} calls: ${Math.round(callMs / 1000)} s ramp + ${o.measureS} s measured...`);
      const step = await runStep(n, o.measureS * 1000, callMs, { ...tenant, apiUrl: api.url }, script, arrivals, asr.engine, broker);
      steps.push(step);
      progress(
        `${n} calls: p50 ${Math.round(step.p50)} / p95 ${Math.round(step.p95)} ms, queue ${step.queueFirst.toFixed(1)} → ${step.queueLast.toFixed(1)}, CPU ${Math.round(step.cpuPct)} %: ${step.held ? 'held' : `missed (${step.why})`}`,
      );
      if (!step.held) break;
      await sleep(3000);
    }
  } finally {
    for (const stop of stops) await stop().catch((error) => progress(`stop: ${(error as Error).message}`));
    await runtime?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    await dropNamespace(namespace, progress);
  }

  const held = steps.filter((s) => s.held);
  const best = held.at(-1);
  const missed = steps.find((s) => !s.held);
  return {
    title: `Capacity: concurrent real-time two-party calls one gateway process (api + ingest + asr, ${describe}) keeps up with on real Kafka; p95 end of speech → utterance event ≤ ${P95_LIMIT_MS} ms, model queue bounded, nothing lost`,
    columns: [
      'calls',
      'calls played',
      'utterances measured',
      'missing',
      'end of speech → event p50 ms',
      'p95 ms',
      'p99 ms',
      '→ speechEndedAtMs p95',
      'model queue first → last third',
      'queue peak',
      'WER %',
      'gateway CPU %',
      'CPU % per call',
      'RSS peak MiB',
      'broker CPU %',
      'players CPU %',
      'others CPU %',
      'held',
    ],
    rows: steps.map((s) => [
      s.calls,
      s.callsPlayed,
      s.measured,
      s.missing,
      Math.round(s.p50),
      Math.round(s.p95),
      Math.round(s.p99),
      Math.round(s.speechEndedP95),
      `${s.queueFirst.toFixed(1)} → ${s.queueLast.toFixed(1)}`,
      s.queuePeak,
      Number((s.wer * 100).toFixed(1)),
      Math.round(s.cpuPct),
      Number((s.cpuPct / s.calls).toFixed(1)),
      Math.round(s.rssPeakMiB),
      Number.isNaN(s.brokerPct) ? '-' : Math.round(s.brokerPct),
      Math.round(s.playerPct),
      Number.isNaN(s.othersPct) ? '-' : Math.round(Math.max(0, s.othersPct)),
      s.held ? 'yes' : `no: ${s.why}`,
    ]),
    notes: [
      best
        ? `Capacity on this machine: **${best.calls} concurrent two-party calls** (largest step held; ${missed ? `${missed.calls} missed: ${missed.why}` : 'no step missed: rerun with a longer --calls ladder'}). Gateway CPU ${(best.cpuPct / best.calls).toFixed(1)} % of a core per call at that step, RSS ${Math.round(best.rssPeakMiB)} MiB peak (${Math.round(idleRssMiB)} MiB idle after warm-up: ${(Math.max(0, best.rssPeakMiB - idleRssMiB) / best.calls).toFixed(1)} MiB per call).`
        : `No step held (first: ${missed?.calls} calls, ${missed?.why}).`,
      `Each step: N slots, slot i starts at i/N of the call's ${Math.round(callMs / 1000)} s and replays the corpus call (festival ${corpus.voice}, 10 scripted utterances over 2 tracks) with a new Call SID until the step ends; measured: utterances whose true end of speech falls in the ${o.measureS} s after the ramp (all N calls running). The issue asks for 3 minutes: \`--measure-s 180\`.`,
      'End of speech → event: wall time the player sent the 20 ms frame holding the true end of speech (manifest) → a consumer of earshot.utterances.v1 in the gateway process has the event (the webhook leg is not included). → speechEndedAtMs: when the asr consumer got the audio holding that end (ingest batching + Kafka): it grows when the consumer stops reading (backpressure).',
      'model queue: utterances queued + running in front of the Moonshine worker(s), mean over the first and last third of the measured window (sampled every 100 ms); a queue that grows from first to last third means the model is not keeping up and the latency would grow without bound over a longer run.',
      "CPU % of one core (2 cores = 200): gateway = this process (api, ingest, asr consumer, VAD, Moonshine worker thread(s), the bench reader); players = the child process playing the calls (not part of the gateway); broker = the Kafka JVM; others = the rest of the shared machine (other people's work: high values mean the gateway got less CPU than the machine has).",
      ...steps
        .filter((s) => s.failures.length > 0)
        .map(
          (s) =>
            `${s.calls} calls: failures: ${s.failures.slice(0, 3).join('; ')}${s.failures.length > 3 ? ` (+${s.failures.length - 3})` : ''}`,
        ),
      `Load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; run took ${Math.round((Date.now() - began) / 1000)} s.`,
    ],
  };
}

interface Target {
  readonly apiUrl: string;
  readonly apiId: string;
  readonly apiSecret: string;
}

const PLAYER = fileURLToPath(new URL('./support/call-player.ts', import.meta.url));

/** Runs the player child; resolves with its final report. */
function playStep(
  target: Target,
  slots: number,
  durationMs: number,
  staggerMs: number,
  script: { customer: CorpusTrack; agent: CorpusTrack },
  onMessage: (message: PlayerMessage) => void,
): Promise<PlayerMessage & { type: 'done' }> & { child: ChildProcess } {
  const child = fork(PLAYER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const done = new Promise<PlayerMessage & { type: 'done' }>((resolve, reject) => {
    child.on('message', (message: PlayerMessage) => {
      if (message.type === 'done') resolve(message);
      else onMessage(message);
    });
    child.on('exit', (code) => reject(new Error(`call player exited with ${code} before reporting`)));
  });
  const command: PlayCommand = {
    type: 'play',
    ...target,
    slots,
    durationMs,
    staggerMs,
    customer: { mulaw: script.customer.mulaw, ends: script.customer.utterances.map((u) => u.endMs) },
    agent: { mulaw: script.agent.mulaw, ends: script.agent.utterances.map((u) => u.endMs) },
  };
  child.send(command);
  return Object.assign(done, { child });
}

async function runStep(
  n: number,
  measureMs: number,
  callMs: number,
  target: Target,
  script: { customer: CorpusTrack; agent: CorpusTrack },
  arrivals: Map<string, { value: UtteranceRecognized; at: number }[]>,
  engine: { stats(): { running: number; queued: number } },
  broker: number | undefined,
): Promise<StepResult> {
  const eos: { callSid: string; role: 'customer' | 'agent'; turn: number; at: number }[] = [];
  const calls: string[] = [];
  const failures: string[] = [];
  const queue: { at: number; jobs: number }[] = [];
  let rssPeak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    const stats = engine.stats();
    queue.push({ at: Date.now(), jobs: stats.running + stats.queued });
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 100);
  const t0 = Date.now();
  const windowFrom = t0 + callMs;
  const windowTo = windowFrom + measureMs;
  const player = playStep(target, n, callMs + measureMs, callMs, script, (message) => {
    if (message.type === 'eos') eos.push(message);
    else if (message.type === 'call') {
      calls.push(message.callSid);
      if (message.error) failures.push(`${message.callSid}: ${message.error}`);
    }
  });
  // CPU over the measured window only (the ramp excluded).
  await sleep(windowFrom - Date.now());
  const cpu0 = process.cpuUsage();
  const broker0 = broker ? processTicks(broker) : undefined;
  const machine0 = machineTicks();
  const player0 = processTicks(player.child.pid as number);
  await sleep(windowTo - Date.now());
  const wallS = (Date.now() - windowFrom) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const broker1 = broker ? processTicks(broker) : undefined;
  const machine1 = machineTicks();
  const player1 = processTicks(player.child.pid as number);
  const report = await player;
  clearInterval(sampler);

  const perCall = script.customer.utterances.length + script.agent.utterances.length;
  await until(() => calls.every((sid) => (arrivals.get(sid)?.length ?? 0) >= perCall), DRAIN_TIMEOUT_MS);
  await sleep(300);

  const latencies: number[] = [];
  const speechEnded: number[] = [];
  let missing = 0;
  for (const e of eos) {
    if (e.at < windowFrom || e.at > windowTo) continue;
    const ref = script[e.role].utterances[e.turn];
    if (!ref) continue;
    const covering = (arrivals.get(e.callSid) ?? [])
      .filter((a) => a.value.role === e.role && Math.min(a.value.endMs, ref.endMs) - Math.max(a.value.startMs, ref.startMs) > 0)
      .sort((a, b) => b.value.endMs - a.value.endMs)[0];
    if (!covering) {
      missing++;
      continue;
    }
    latencies.push(covering.at - e.at);
    speechEnded.push(covering.value.speechEndedAtMs - e.at);
  }
  const werPairs: [string, string][] = [];
  for (const sid of calls) {
    for (const role of ['customer', 'agent'] as const) {
      const got = (arrivals.get(sid) ?? []).filter((a) => a.value.role === role).sort((a, b) => a.value.startMs - b.value.startMs);
      werPairs.push([script[role].utterances.map((u) => u.text).join(' '), got.map((a) => a.value.text ?? '').join(' ')]);
    }
  }
  const inWindow = queue.filter((q) => q.at >= windowFrom && q.at <= windowTo);
  const third = Math.max(1, Math.floor(inWindow.length / 3));
  const mean = (xs: { jobs: number }[]) => (xs.length ? xs.reduce((s, x) => s + x.jobs, 0) / xs.length : 0);
  const queueFirst = mean(inWindow.slice(0, third));
  const queueLast = mean(inWindow.slice(-third));
  const cpuPct = ((cpu.user + cpu.system) / 1e6 / wallS) * 100;
  const brokerPct = broker0 !== undefined && broker1 !== undefined ? ((broker1 - broker0) / TICKS / wallS) * 100 : Number.NaN;
  const playerPct = player0 !== undefined && player1 !== undefined ? ((player1 - player0) / TICKS / wallS) * 100 : Number.NaN;
  const machinePct = machine0 !== undefined && machine1 !== undefined ? ((machine1 - machine0) / TICKS / wallS) * 100 : Number.NaN;
  const othersPct = machinePct - cpuPct - (Number.isNaN(brokerPct) ? 0 : brokerPct) - (Number.isNaN(playerPct) ? 0 : playerPct);
  const p95 = pct(latencies, 0.95);
  const reasons = [
    ...(latencies.length === 0 ? ['nothing measured'] : []),
    ...(p95 > P95_LIMIT_MS ? [`p95 ${Math.round(p95)} ms > ${P95_LIMIT_MS}`] : []),
    ...(missing > 0 ? [`${missing} utterances missing`] : []),
    ...(queueLast > queueFirst + 1 ? ['model queue growing'] : []),
    ...(report.lagP99 >= 100 ? [`players lagged (p99 ${Math.round(report.lagP99)} ms)`] : []),
    ...(failures.length > 0 ? [`${failures.length} calls failed`] : []),
  ];
  return {
    calls: n,
    callsPlayed: calls.length,
    measured: latencies.length,
    missing,
    p50: pct(latencies, 0.5),
    p95,
    p99: pct(latencies, 0.99),
    speechEndedP95: pct(speechEnded, 0.95),
    queueFirst,
    queueLast,
    queuePeak: Math.max(0, ...inWindow.map((q) => q.jobs)),
    wer: pooledWer(werPairs).wer,
    cpuPct,
    playerPct,
    brokerPct,
    othersPct,
    rssPeakMiB: rssPeak / 2 ** 20,
    lagP99: report.lagP99,
    failures,
    held: reasons.length === 0,
    why: reasons.join(', '),
  };
}
