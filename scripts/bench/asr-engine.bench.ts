import { readFileSync } from 'node:fs';
import { DEFAULT_ENDPOINTING, endpointOptions, speculationStartMs } from '../../apps/asr/src/engine/endpointer.js';
import { defaultModelsDir, ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { createMoonshineEngine } from '../../apps/asr/src/engine/moonshine-engine.js';
import { SileroVad, VAD_WINDOW } from '../../apps/asr/src/engine/silero-vad.js';
import type { EndpointOptions, Utterance } from '../../apps/asr/src/engine/speech-engine.port.js';
import { mulawToFloat32 } from '../../apps/shared/src/audio/mulaw.js';
import { type CorpusTrack, generateTestAudio } from '../test-audio/corpus.js';
import { pooledWer } from '../test-audio/wer.js';
import type { BenchResult } from './run.js';
import { describeSpeculation } from './support/stats.js';

/**
 * The speech engine on the generated corpus (scripts/test-audio):
 * - "call": N copies of the two-party call, both tracks of each pushed in 20 ms frames at
 *   `--speed` x real time (1 = live). Latency = wall time from pushing the true end of an
 *   utterance's speech to receiving its text (endpoint silence + queueing + inference).
 * - "sentences": the single sentences pushed whole, one after another (no pacing): RTF is wall
 *   time over audio time, VAD included.
 * Options: --calls N (default 1), --workers N (1), --speed X (1), --min-silence-ms, --pad-ms,
 * --trailing-pad-ms, --sentence-end-ms, --no-speculate.
 *   npm run bench -- asr-engine [--calls 4 --workers 2]
 */
export async function run(args: string[]): Promise<BenchResult> {
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const calls = option('calls', 1);
  const workers = option('workers', 1);
  const speed = option('speed', 1);
  const endpointing: Partial<EndpointOptions> = {
    minSilenceMs: option('min-silence-ms', DEFAULT_ENDPOINTING.minSilenceMs),
    speechPadMs: option('pad-ms', DEFAULT_ENDPOINTING.speechPadMs),
    trailingPadMs: option('trailing-pad-ms', DEFAULT_ENDPOINTING.trailingPadMs),
    sentenceEndSilenceMs: option('sentence-end-ms', DEFAULT_ENDPOINTING.sentenceEndSilenceMs),
  };
  const speculate = !args.includes('--no-speculate');
  const paths = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio();
  const engine = createMoonshineEngine({ modelsDir: paths.dir, workers, endpointing, speculate });
  await engine.ready();

  const vadUs = await vadCost(paths.vad, readFileSync(corpus.call.tracks.agent.mulaw));

  // Calls, paced.
  const tracks = Array.from({ length: calls }, () => [corpus.call.tracks.customer, corpus.call.tracks.agent]).flat();
  const feeds = tracks.map((track) => ({ track, audio: readFileSync(track.mulaw), stream: engine.createStream(), got: [] as Got[] }));
  const frames = Math.max(...feeds.map((f) => Math.ceil(f.audio.length / 160)));
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  // A full model queue refuses a push (its utterances are lost): counted, reported, not fatal.
  let refusedPushes = 0;
  const refused = () => {
    refusedPushes++;
  };
  for (let i = 0; i < frames; i++) {
    const due = t0 + (i * 20) / speed;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    for (const feed of feeds) {
      const frame = feed.audio.subarray(i * 160, (i + 1) * 160);
      if (frame.length > 0) pending.push(feed.stream.push(frame).then((us) => collect(feed.got, us), refused));
    }
  }
  for (const feed of feeds) pending.push(feed.stream.flush().then((us) => collect(feed.got, us), refused));
  await Promise.all(pending);
  const callAudio = feeds.reduce((sum, f) => sum + f.audio.length / 8000, 0);
  const latencies: number[] = [];
  for (const feed of feeds) {
    for (const ref of feed.track.utterances) {
      const match = feed.got.find((g) => overlap(g.utterance, ref) > 0);
      if (match) latencies.push(match.at - (t0 + ref.endMs / speed));
    }
  }
  const callWer = pooledWer(feeds.map((f) => [joinRef(f.track), f.got.map((g) => g.utterance.text).join(' ')]));

  // Sentences, unpaced, one at a time.
  const started = performance.now();
  const sentencePairs: [string, string][] = [];
  let sentenceAudio = 0;
  let sentenceUtterances = 0;
  for (const sentence of corpus.sentences) {
    const audio = readFileSync(sentence.mulaw);
    sentenceAudio += audio.length / 8000;
    const stream = engine.createStream();
    const got = (await Promise.all([stream.push(audio), stream.flush()])).flat();
    sentenceUtterances += got.length;
    sentencePairs.push([joinRef(sentence), got.map((u) => u.text).join(' ')]);
  }
  const sentenceSeconds = (performance.now() - started) / 1000;
  const sentenceWer = pooledWer(sentencePairs);
  const rss = process.memoryUsage().rss / 2 ** 20;
  const speculation = engine.stats().speculation;
  await engine.close();

  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number) : Number.NaN;
  return {
    title: `Speech engine (Moonshine tiny + Silero VAD v5): ${workers} worker(s), min silence ${endpointing.minSilenceMs} ms, padding ${endpointing.speechPadMs} ms before / ${endpointing.trailingPadMs} ms after speech, sentence end ${endpointing.sentenceEndSilenceMs || 'off'}, speculation ${speculate && speculationStartMs(endpointOptions(DEFAULT_ENDPOINTING, endpointing)) !== undefined ? 'on' : 'off'}`,
    columns: ['scenario', 'utterances', 'audio s', 'RTF', 'p50 latency ms', 'p90 latency ms', 'WER %'],
    rows: [
      [
        `${calls} call(s) x 2 tracks, 20 ms frames at ${speed}x`,
        feeds.reduce((n, f) => n + f.got.length, 0),
        Math.round(callAudio),
        '-',
        Math.round(pct(0.5)),
        Math.round(pct(0.9)),
        Number((callWer.wer * 100).toFixed(1)),
      ],
      [
        `${corpus.sentences.length} sentences, whole, sequential`,
        sentenceUtterances,
        Math.round(sentenceAudio),
        Number((sentenceSeconds / sentenceAudio).toFixed(3)),
        '-',
        '-',
        Number((sentenceWer.wer * 100).toFixed(1)),
      ],
    ],
    notes: [
      `Silero VAD inline: ${vadUs.toFixed(0)} us per 32 ms window (${((vadUs / 32_000) * 100).toFixed(2)} % of one core per stream)`,
      ...(refusedPushes > 0
        ? [`${refusedPushes} pushes refused by a full model queue (their utterances lost): the model could not keep up`]
        : []),
      ...(speculation ? [`speculative decodes: ${describeSpeculation(speculation)}`] : []),
      `RSS after the run: ${Math.round(rss)} MiB (one VAD session + ${workers} Moonshine worker(s))`,
      `corpus: festival ${corpus.voice}, telephone band, 8 kHz mu-law (${corpus.version})`,
    ],
  };
}

interface Got {
  readonly utterance: Utterance;
  readonly at: number;
}

function collect(into: Got[], utterances: readonly Utterance[]): void {
  const at = performance.now();
  for (const utterance of utterances) into.push({ utterance, at });
}

const joinRef = (track: CorpusTrack) => track.utterances.map((u) => u.text).join(' ');

function overlap(a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }): number {
  return Math.min(a.endMs, b.endMs) - Math.max(a.startMs, b.startMs);
}

/** Mean time of one VAD window on this thread, over a whole track. */
async function vadCost(path: string, mulaw: Uint8Array): Promise<number> {
  const vad = await SileroVad.load(path);
  const samples = mulawToFloat32(mulaw);
  const state = SileroVad.createState();
  const windows = Math.floor(samples.length / VAD_WINDOW);
  const started = performance.now();
  for (let i = 0; i < windows; i++) await vad.probability(state, samples.subarray(i * VAD_WINDOW, (i + 1) * VAD_WINDOW));
  const us = ((performance.now() - started) * 1000) / windows;
  await vad.close();
  return us;
}
