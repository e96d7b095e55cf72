import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startApi } from '../../apps/api/main.js';
import { startAsrApp } from '../../apps/asr/main.js';
import { DEFAULT_ENDPOINTING, endpointingFromConfig, endpointOptions, speculationStartMs } from '../../apps/asr/src/engine/endpointer.js';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { createMoonshineEngine } from '../../apps/asr/src/engine/moonshine-engine.js';
import type { SpeechEngine } from '../../apps/asr/src/engine/speech-engine.port.js';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { startIngest } from '../../apps/ingest/main.js';
import type { Config } from '../../apps/shared/src/config.js';
import { createEventLog } from '../../apps/shared/src/event-log.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { createRuntime, type Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { createTestApp } from '../../test/support/runtime.js';
import { type CorpusTrack, generateTestAudio } from '../test-audio/corpus.js';
import { pooledWer } from '../test-audio/wer.js';
import type { BenchResult } from './run.js';
import { benchRun } from './support/bench-env.js';
import { dropNamespace } from './support/namespace.js';
import { describeSpeculation, xorshift } from './support/stats.js';

/**
 * End-to-end latency of the whole gateway in one process (api, ingest, asr with the real
 * model; production Kafka settings) on the real Kafka broker and schema registry of
 * `earshot infra`, in a Kafka namespace of the run's own (deleted after).
 *
 *   npm run bench -- latency [--calls 1,10] [--speed 1] [--workers N] [--seed 1] [--dump samples.json]
 *                            [--min-silence-ms N] [--trailing-pad-ms N] [--silence-pad-ms N] [--speculate-after-ms N] [--sentence-end-ms N] [--no-speculate]
 *
 * Without the endpointing options the asr runs exactly as `earshot start` builds it (config
 * and engine defaults); with them (A/B runs) the engine gets those endpointing overrides.
 *
 * Each step plays N concurrent two-party calls (the corpus call: customer inbound, agent
 * outbound; 20 ms Twilio frames at `--speed` x real time, each call its own Call SID, starts
 * staggered by a random 0-2 s so turns do not align). For every utterance of the script:
 * - end of speech = the wall time the simulator sent the frame holding the true end of speech
 *   (manifest media time → `onFrame` time of that frame);
 * - → readable: a consumer in this process (its own group on earshot.utterances.v1) has the
 *   event (time its batch arrived, decoded): what a customer reading the topic sees;
 * - → speechEndedAtMs: when the asr consumer received the audio chunk holding that end
 *   (ingest batching + Kafka produce and fetch of audio);
 * - → occurredAtMs: when the asr consumer built the event (+ endpoint silence + VAD + model).
 * The utterance event matched to a scripted utterance is the one of the same call and role
 * overlapping it with the latest end (a split turn counts once, at its last piece).
 */
const STAGGER_MS = 2000;
const DRAIN_TIMEOUT_MS = 20_000;

interface Options {
  readonly calls: readonly number[];
  readonly speed: number;
  readonly workers: number | undefined;
  readonly endpointing: {
    minSilenceMs?: number;
    trailingPadMs?: number;
    silencePadMs?: number;
    speculateAfterMs?: number;
    sentenceEndSilenceMs?: number;
  };
  readonly speculate: boolean;
  readonly seed: number;
  /** Writes every sample (per utterance) of every step to this JSON file. */
  readonly dump: string | undefined;
}

function parse(args: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const calls = (value('calls') ?? '1,10').split(',').map(Number);
  if (calls.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--calls: a comma-separated list of positive integers');
  const speed = Number(value('speed') ?? 1);
  if (!(speed > 0)) throw new Error('--speed: a positive number (1 = real time)');
  const number = (name: string) => (value(name) === undefined ? undefined : Number(value(name)));
  const endpointing = {
    ...(number('min-silence-ms') !== undefined ? { minSilenceMs: number('min-silence-ms') } : {}),
    ...(number('trailing-pad-ms') !== undefined ? { trailingPadMs: number('trailing-pad-ms') } : {}),
    ...(number('silence-pad-ms') !== undefined ? { silencePadMs: number('silence-pad-ms') } : {}),
    ...(number('speculate-after-ms') !== undefined ? { speculateAfterMs: number('speculate-after-ms') } : {}),
    ...(number('sentence-end-ms') !== undefined ? { sentenceEndSilenceMs: number('sentence-end-ms') } : {}),
  };
  return {
    calls,
    speed,
    workers: number('workers'),
    seed: Number(value('seed') ?? 1),
    dump: value('dump'),
    endpointing,
    speculate: !args.includes('--no-speculate'),
  };
}

interface Arrival {
  readonly callSid: string;
  readonly value: UtteranceRecognized;
  readonly at: number;
}

interface Sample {
  readonly call: number;
  readonly role: 'customer' | 'agent';
  readonly turn: number;
  /** When the call's stop-streaming was sent, ms after this utterance's end of speech. */
  readonly stopAfter: number;
  /** Wall time (ms since the epoch) of the end of speech. */
  readonly eosAt: number;
  readonly readable: number;
  readonly speechEnded: number;
  readonly occurred: number;
}

interface Step {
  readonly calls: number;
  readonly expected: number;
  readonly events: number;
  readonly matched: number;
  readonly samples: readonly Sample[];
  readonly wer: number;
  readonly cpuPct: number;
  readonly rssPeakMiB: number;
  readonly queuePeak: number;
  /** Queued utterances at which the asr consumer stops reading audio (backpressure). */
  readonly queueThrottle: number;
  readonly brokerPct: number;
  readonly machinePct: number;
  readonly clientLagP99: number;
  readonly wallS: number;
  readonly failures: readonly string[];
  /** Wall time each call sent its stop-streaming (after its last frame). */
  readonly stopsAt: readonly number[];
}

const progress = (line: string) => console.error(`latency: ${line}`);

export async function run(args: string[]): Promise<BenchResult> {
  const o = parse(args);
  const began = Date.now();
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR, { log: (line) => progress(`test-audio: ${line}`) });
  const audio = {
    customer: new Uint8Array(readFileSync(corpus.call.tracks.customer.mulaw)),
    agent: new Uint8Array(readFileSync(corpus.call.tracks.agent.mulaw)),
  };
  // Production settings (event log built from the config, as `earshot start` does), test keys.
  const { config, namespace, dataDir } = benchRun('latency', o.workers !== undefined ? { EARSHOT_ASR_WORKERS: String(o.workers) } : {});
  await ensureModels(config.EARSHOT_MODELS_DIR);
  const fetchMaxWaitMs = config.EARSHOT_KAFKA_FETCH_MAX_WAIT_MS;
  const stops: (() => Promise<void>)[] = [];
  const steps: Step[] = [];
  let describe = '';
  let speculation: ReturnType<SpeechEngine['stats']>['speculation'];
  let vadCounts: ReturnType<SpeechEngine['stats']>['vad'];
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(config);
    const custom = Object.keys(o.endpointing).length > 0 || !o.speculate;
    const engine = custom
      ? createMoonshineEngine({
          modelsDir: config.EARSHOT_MODELS_DIR,
          workers: config.EARSHOT_ASR_WORKERS,
          maxQueue: config.EARSHOT_ASR_MAX_QUEUE,
          endpointing: { ...endpointingFromConfig(config), ...o.endpointing },
          speculate: o.speculate,
        })
      : undefined;
    const asr = await startAsrApp(runtime, { engine });
    stops.push(() => asr.stop());
    if (engine) stops.push(() => engine.close());
    const ingest = await startIngest(runtime);
    stops.push(() => ingest.stop());
    const api = await startApi({ ...runtime, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
    stops.push(() => api.stop());
    const tenant = await createTestApp(runtime, 'latency bench');

    const arrivals = new Map<string, Arrival[]>();
    const reader = runtime.eventLog.createConsumer({ groupId: 'latency-bench-reader', topics: [TOPICS.utterances], fromBeginning: true });
    await reader.run(async (batch) => {
      const at = Date.now();
      for (const record of batch.records) {
        const list = arrivals.get(record.key) ?? [];
        list.push({ callSid: record.key, value: record.value as UtteranceRecognized, at });
        arrivals.set(record.key, list);
      }
    });
    stops.unshift(() => reader.stop());
    describe = asr.describe;
    progress(`gateway up (${asr.describe}), Kafka namespace ${namespace}`);

    // Warm-up (not measured): connections, schema ids, JIT, the model's first runs.
    const warm = corpus.sentences.find((s) => s.id === 'order') ?? corpus.sentences[0];
    if (warm) {
      const warmSid = newCallSid();
      await simulateCall({ apiUrl: api.url, ...tenant, callSid: warmSid, inbound: new Uint8Array(readFileSync(warm.mulaw)), speed: 4 });
      await until(() => (arrivals.get(warmSid)?.length ?? 0) >= 1, 10_000);
    }

    const random = xorshift(o.seed);
    const broker = findBrokerPid();
    for (const n of o.calls) {
      progress(`${n} call(s) at ${o.speed}x...`);
      steps.push(await step(n, o.speed, api.url, tenant, audio, corpus.call.tracks, arrivals, random, broker, asr.engine));
      const s = steps[steps.length - 1] as Step;
      progress(
        `${n} call(s): ${s.events} events for ${s.expected} utterances, p50 ${pct(
          s.samples.map((x) => x.readable),
          0.5,
        )} ms`,
      );
      await sleep(3000);
    }
    speculation = asr.engine.stats().speculation;
    vadCounts = asr.engine.stats().vad;
    if (o.dump) writeFileSync(o.dump, JSON.stringify(steps, null, 1));
  } finally {
    for (const stop of stops) await stop().catch((error) => progress(`stop: ${(error as Error).message}`));
    await runtime?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    await dropNamespace(namespace, progress);
  }

  const ep = endpointOptions(DEFAULT_ENDPOINTING, { ...endpointingFromConfig(config), ...o.endpointing });
  const cell = (values: number[], p: number) => Math.round(pct(values, p));
  const pair = (values: number[]) => `${cell(values, 0.5)} / ${cell(values, 0.95)}`;
  return {
    title: `End to end latency: N concurrent two-party calls at ${o.speed}x real time through api + ingest + asr (Moonshine tiny, ${describe}; ingest chunks ${config.EARSHOT_INGEST_CHUNK_MS} ms; endpointing min silence ${ep.minSilenceMs} ms, trailing pad ${ep.trailingPadMs} ms + ${ep.silencePadMs} ms of silence, sentence end ${ep.sentenceEndSilenceMs || 'off'}, speculation ${o.speculate && speculationStartMs(ep) !== undefined ? `after ${speculationStartMs(ep)} ms` : 'off'}) in one process on real Kafka`,
    columns: [
      'calls',
      'utterances (events / scripted)',
      'end of speech → readable p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      '→ speechEndedAtMs p50 / p95',
      '→ occurredAtMs p50 / p95',
      'occurredAtMs → readable p50 / p95',
      'WER %',
      'model jobs peak',
      'process CPU %',
      'RSS peak MiB',
      'broker CPU %',
      'others CPU %',
    ],
    rows: steps.map((s) => {
      const readable = s.samples.map((x) => x.readable);
      return [
        s.calls,
        `${s.events} / ${s.expected}${s.matched < s.expected ? ` (${s.expected - s.matched} missed)` : ''}`,
        cell(readable, 0.5),
        cell(readable, 0.95),
        cell(readable, 0.99),
        Math.round(Math.max(...readable)),
        pair(s.samples.map((x) => x.speechEnded)),
        pair(s.samples.map((x) => x.occurred)),
        pair(s.samples.map((x) => x.readable - x.occurred)),
        Number((s.wer * 100).toFixed(1)),
        s.queuePeak,
        Number(s.cpuPct.toFixed(1)),
        Math.round(s.rssPeakMiB),
        Number.isNaN(s.brokerPct) ? '-' : Math.round(s.brokerPct),
        Number.isNaN(s.machinePct) ? '-' : Math.round(Math.max(0, s.machinePct - s.cpuPct - (Number.isNaN(s.brokerPct) ? 0 : s.brokerPct))),
      ];
    }),
    notes: [
      `Each call: the corpus call (festival ${corpus.voice}, ${Math.round(corpus.call.durationMs / 1000)} s, ${corpus.call.tracks.customer.utterances.length + corpus.call.tracks.agent.utterances.length} scripted utterances over 2 tracks), a Call SID of its own, start staggered by a random 0-${STAGGER_MS / 1000} s (seed ${o.seed}); stop-streaming after the last frame, then Twilio's stop. One unmeasured warm-up call first.`,
      "End of speech: wall time the simulator sent the 20 ms frame holding the true end of speech (manifest). readable: a consumer of earshot.utterances.v1 in this process has the decoded event. speechEndedAtMs: the asr consumer received the audio chunk holding the end of speech (so → speechEndedAtMs = ingest 100 ms batching + produce + fetch). occurredAtMs: the event was built (adds the endpoint silence (min silence in the title), VAD, queueing and Moonshine). occurredAtMs → readable: produce of the utterance + the reader's fetch + decode.",
      'Percentiles over every scripted utterance of the step (10 turns per call; a turn that came as two events, at the pause between its sentences, counts once, from its end of speech to its last event; with 1 call p95/p99 are the worst one or two). WER: per track, the events of that role in start order joined against the script, pooled over the step.',
      'CPU % of one core over the step (process.cpuUsage: ingest, api, asr consumer, VAD, Moonshine worker thread, the bench consumer and the call simulator, all in this process); broker: the Kafka JVM (/proc); others: the rest of the shared 2-core machine (/proc/stat minus both). RSS peak sampled every 500 ms. model jobs peak: utterances running + queued in front of the Moonshine worker(s) (engine.stats(), sampled every 50 ms): above the worker count, utterances wait for the model.',
      ...steps.flatMap((s) => {
        const others = s.machinePct - s.cpuPct - (Number.isNaN(s.brokerPct) ? 0 : s.brokerPct);
        return [
          ...(others > 50
            ? [
                `${s.calls} call(s): the machine was busy with other work (${Math.round(others)} % of a core): this process got less CPU, the Moonshine worker falls behind and every latency here grows with its queue; rerun on a quiet machine to compare.`,
              ]
            : []),
          ...(s.queuePeak >= s.queueThrottle
            ? [
                `${s.calls} call(s): the model queue reached the asr consumer's backpressure threshold (${s.queueThrottle}): it stopped reading audio for a while, so → speechEndedAtMs includes that wait.`,
              ]
            : []),
        ];
      }),
      ...steps.map(
        (s) =>
          `${s.calls} call(s): step took ${s.wallS.toFixed(0)} s, simulator lag p99 ${s.clientLagP99.toFixed(1)} ms (frame sent after its due time)${s.failures.length ? `; failures: ${s.failures.join('; ')}` : ''}`,
      ),
      ...(speculation ? [`Speculative decodes over the run (warm-up included): ${describeSpeculation(speculation)}.`] : []),
      ...(vadCounts && vadCounts.runs > 0
        ? [
            `VAD over the run: ${vadCounts.windows} windows in ${vadCounts.runs} batched runs (mean batch ${(vadCounts.windows / vadCounts.runs).toFixed(1)}; npm run bench -- vad gives the CPU per window at each batch size).`,
          ]
        : []),
      `Kafka: 1 broker (earshot infra, KRaft) on this machine, namespace of the run's own, EARSHOT_KAFKA_FETCH_MAX_WAIT_MS ${fetchMaxWaitMs} (production default); load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; run took ${Math.round((Date.now() - began) / 1000)} s.`,
    ],
  };
}

async function step(
  n: number,
  speed: number,
  apiUrl: string,
  tenant: { apiId: string; apiSecret: string },
  audio: { customer: Uint8Array; agent: Uint8Array },
  script: { customer: CorpusTrack; agent: CorpusTrack },
  arrivals: Map<string, Arrival[]>,
  random: () => number,
  broker: number | undefined,
  engine: { stats(): { running: number; queued: number; maxQueue: number } },
): Promise<Step> {
  const frames = Math.ceil(Math.max(audio.customer.length, audio.agent.length) / 160);
  const plans = Array.from({ length: n }, () => ({
    callSid: newCallSid(),
    delay: random() * STAGGER_MS,
    sent: { inbound: new Float64Array(frames), outbound: new Float64Array(frames) },
    t0: 0,
    lastFrameAt: 0,
    lags: [] as number[],
  }));
  const failures: string[] = [];
  let rssPeak = process.memoryUsage.rss();
  let queuePeak = 0;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 500);
  const queueSampler = setInterval(() => {
    const stats = engine.stats();
    queuePeak = Math.max(queuePeak, stats.running + stats.queued);
  }, 50);
  const cpu0 = process.cpuUsage();
  const broker0 = broker ? processTicks(broker) : undefined;
  const machine0 = machineTicks();
  const wall0 = performance.now();

  await Promise.all(
    plans.map(async (plan) => {
      await sleep(plan.delay);
      try {
        await simulateCall({
          apiUrl,
          ...tenant,
          callSid: plan.callSid,
          inbound: audio.customer,
          outbound: audio.agent,
          speed,
          onFrame: (track, chunk, mediaMs) => {
            const now = Date.now();
            if (chunk === 1 && track === 'inbound') plan.t0 = now;
            else if (track === 'inbound') plan.lags.push(now - (plan.t0 + mediaMs / speed));
            plan.sent[track][chunk - 1] = now;
            plan.lastFrameAt = now;
          },
        });
      } catch (error) {
        failures.push(`${plan.callSid}: ${(error as Error).message}`);
      }
    }),
  );
  const expectedPerCall = script.customer.utterances.length + script.agent.utterances.length;
  await until(() => plans.every((p) => (arrivals.get(p.callSid)?.length ?? 0) >= expectedPerCall), DRAIN_TIMEOUT_MS);
  await sleep(500);

  const wallS = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const broker1 = broker ? processTicks(broker) : undefined;
  const machine1 = machineTicks();
  clearInterval(sampler);
  clearInterval(queueSampler);

  const samples: Sample[] = [];
  const werPairs: [string, string][] = [];
  let events = 0;
  let matched = 0;
  for (const [call, plan] of plans.entries()) {
    const got = arrivals.get(plan.callSid) ?? [];
    events += got.length;
    for (const [role, track, side] of [
      ['customer', script.customer, 'inbound'],
      ['agent', script.agent, 'outbound'],
    ] as const) {
      const mine = got.filter((a) => a.value.role === role).sort((a, b) => a.value.startMs - b.value.startMs);
      werPairs.push([track.utterances.map((u) => u.text).join(' '), mine.map((a) => a.value.text ?? '').join(' ')]);
      for (const [turn, u] of track.utterances.entries()) {
        const covering = mine.filter((a) => Math.min(a.value.endMs, u.endMs) - Math.max(a.value.startMs, u.startMs) > 0);
        const last = covering.sort((a, b) => b.value.endMs - a.value.endMs)[0];
        const sentAt = plan.sent[side][Math.floor((u.endMs * 8 - 1) / 160)];
        if (!last || !sentAt) continue;
        matched++;
        samples.push({
          call,
          role,
          turn,
          stopAfter: plan.lastFrameAt - sentAt,
          eosAt: sentAt,
          readable: last.at - sentAt,
          speechEnded: last.value.speechEndedAtMs - sentAt,
          occurred: last.value.occurredAtMs - sentAt,
        });
      }
    }
  }
  const lags = plans.flatMap((p) => p.lags).sort((a, b) => a - b);
  return {
    calls: n,
    expected: n * expectedPerCall,
    events,
    matched,
    samples,
    wer: pooledWer(werPairs).wer,
    cpuPct: ((cpu.user + cpu.system) / 1e6 / wallS) * 100,
    rssPeakMiB: rssPeak / 2 ** 20,
    queuePeak,
    queueThrottle: Math.ceil(engine.stats().maxQueue * 0.75),
    brokerPct: broker0 !== undefined && broker1 !== undefined ? ((broker1 - broker0) / TICKS / wallS) * 100 : Number.NaN,
    machinePct: machine0 !== undefined && machine1 !== undefined ? ((machine1 - machine0) / TICKS / wallS) * 100 : Number.NaN,
    clientLagP99: lags.length ? (lags[Math.min(lags.length - 1, Math.floor(0.99 * lags.length))] as number) : 0,
    wallS,
    failures,
    stopsAt: plans.map((p) => p.lastFrameAt),
  };
}

/**
 * `createRuntime` on the real broker; retried once the topics exist when the broker has not
 * yet elected the leaders of topics it has just created (NOT_LEADER_FOR_PARTITION, seen on this
 * loaded machine).
 */
export async function openRuntime(config: Config): Promise<Runtime> {
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'latency-bench' });
  for (let attempt = 1; ; attempt++) {
    const eventLog = createEventLog(config, logger);
    try {
      return await createRuntime(config, { name: 'latency-bench', logger, eventLog });
    } catch (error) {
      await eventLog.close().catch(() => undefined);
      if (attempt >= 3 || !(error as { retriable?: boolean }).retriable) throw error;
      progress(`runtime start failed (${(error as Error).message}), retrying`);
      await sleep(2000);
    }
  }
}

/** Nearest-rank percentile; NaN for no values. */
export function pct(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export const TICKS = 100; // USER_HZ: /proc counts CPU time in 1/100 s

/** The Kafka broker's pid, when exactly one runs on this machine (read-only look at /proc). */
export function findBrokerPid(): number | undefined {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('kafka.Kafka')) found.push(Number(entry));
    } catch {
      // gone or not ours to read
    }
  }
  return found.length === 1 ? found[0] : undefined;
}

/** utime + stime of a process, in ticks. */
export function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Busy ticks of the whole machine (all cores). */
export function machineTicks(): number | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return user + nice + system + irq + softirq + steal;
  } catch {
    return undefined;
  }
}
