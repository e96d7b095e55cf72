import { readFileSync } from 'node:fs';
import { DEFAULT_ENDPOINTING } from '../../apps/asr/src/engine/endpointer.js';
import { defaultModelsDir, ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { createMoonshineEngine } from '../../apps/asr/src/engine/moonshine-engine.js';
import type { SpeechEngine } from '../../apps/asr/src/engine/speech-engine.port.js';
import { type CorpusTrack, generateTestAudio } from '../test-audio/corpus.js';
import { noisyMulaw } from '../test-audio/noise.js';
import { pooledWer, wordErrors } from '../test-audio/wer.js';
import type { BenchResult } from './run.js';

/**
 * Word error rate of the speech engine (offline path: Silero VAD + Moonshine tiny, default
 * endpointing) on every part of the corpus (scripts/test-audio): the same 18 call-center
 * sentences in each synthetic voice, and the real recordings of pocketsphinx-testdata; clean,
 * and with white Gaussian noise at `--snr` dB (speech power over noise power, added to the
 * telephone-band PCM before mu-law encoding, fixed `--seed`).
 *
 *   npm run bench -- accuracy [--snr 15] [--seed 1] [--workers 1] [--min-silence-ms N] [--trailing-pad-ms N] [--silence-pad-ms N] [--pad-ms N] [--sentence-end-ms N] [--negative-threshold P]
 *
 * Endpointing defaults unless overridden (the same options `earshot start` and
 * `earshot transcribe` use, so WER here is the WER of the live path's endpointing).
 *
 * Each file is pushed whole and flushed, one at a time; WER is pooled (errors / reference
 * words) after normalisation (scripts/test-audio/wer.ts: case, punctuation, digits spelled).
 */
export async function run(args: string[]): Promise<BenchResult> {
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const snr = option('snr', 15);
  const seed = option('seed', 1);
  const workers = option('workers', 1);
  const endpointing = {
    negativeThreshold: option('negative-threshold', DEFAULT_ENDPOINTING.negativeThreshold),
    minSilenceMs: option('min-silence-ms', DEFAULT_ENDPOINTING.minSilenceMs),
    speechPadMs: option('pad-ms', DEFAULT_ENDPOINTING.speechPadMs),
    trailingPadMs: option('trailing-pad-ms', DEFAULT_ENDPOINTING.trailingPadMs),
    silencePadMs: option('silence-pad-ms', DEFAULT_ENDPOINTING.silencePadMs),
    sentenceEndSilenceMs: option('sentence-end-ms', DEFAULT_ENDPOINTING.sentenceEndSilenceMs),
  };
  const paths = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR, { log: (line) => console.error(`test-audio: ${line}`) });
  const engine = createMoonshineEngine({ modelsDir: paths.dir, workers, endpointing });
  await engine.ready();
  const started = performance.now();

  const sets: { name: string; source: string; tracks: readonly (CorpusTrack & { id: string })[] }[] = [
    ...corpus.voices.map((v) => ({ name: `voice ${v.id}`, source: `${v.synthesizer} ${v.name} (${v.package})`, tracks: v.sentences })),
    ...(['cards', 'librivox'] as const).map((set) => ({
      name: `recordings ${set}`,
      source:
        set === 'cards'
          ? 'pocketsphinx-testdata cards/: CMU, one speaker, card names'
          : 'pocketsphinx-testdata librivox/: read book sentences, MP3 source',
      tracks: corpus.recordings.filter((r) => r.set === set),
    })),
  ];

  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  let audioSeconds = 0;
  const all = { clean: [] as [string, string][], noisy: [] as [string, string][] };
  const synthetic = { clean: [] as [string, string][], noisy: [] as [string, string][] };
  for (const set of sets) {
    const clean: [string, string][] = [];
    const noisy: [string, string][] = [];
    let utterances = 0;
    for (const track of set.tracks) {
      const reference = track.utterances.map((u) => u.text).join(' ');
      const mulaw = new Uint8Array(readFileSync(track.mulaw));
      audioSeconds += (2 * mulaw.length) / 8000;
      const a = await transcribe(engine, mulaw);
      const b = await transcribe(engine, noisyMulaw(track, snr, seed));
      utterances += a.count;
      clean.push([reference, a.text]);
      noisy.push([reference, b.text]);
    }
    const c = pooledWer(clean);
    const n = pooledWer(noisy);
    rows.push([set.name, set.source, set.tracks.length, c.words, utterances, pct(c.wer), pct(n.wer)]);
    all.clean.push(...clean);
    all.noisy.push(...noisy);
    if (set.name.startsWith('voice')) {
      synthetic.clean.push(...clean);
      synthetic.noisy.push(...noisy);
    }
    const worst = (pairs: [string, string][]) => pairs.map(([r, h]) => ({ r, h, e: wordErrors(r, h).errors })).sort((x, y) => y.e - x.e)[0];
    const wc = worst(clean);
    const wn = worst(noisy);
    if (wc && wc.e > 0) notes.push(`${set.name}, worst clean (${wc.e} errors): "${wc.r}" → "${wc.h}"`);
    if (wn && wn.e > 0) notes.push(`${set.name}, worst at ${snr} dB (${wn.e} errors): "${wn.r}" → "${wn.h}"`);
  }
  const pooled = (name: string, p: typeof all) => {
    const c = pooledWer(p.clean);
    const n = pooledWer(p.noisy);
    return [name, 'pooled', p.clean.length, c.words, '-', pct(c.wer), pct(n.wer)];
  };
  rows.push(pooled('all synthetic voices', synthetic), pooled('all', all));
  const seconds = (performance.now() - started) / 1000;
  const rss = process.memoryUsage().rss / 2 ** 20;
  await engine.close();

  return {
    title: `Accuracy: WER of Moonshine tiny (quantized) + Silero VAD v5, offline path, 8 kHz mu-law telephone channel, clean and with white noise at ${snr} dB SNR; endpointing: min silence ${endpointing.minSilenceMs} ms (below speech probability ${endpointing.negativeThreshold}), padding ${endpointing.speechPadMs} ms before / ${endpointing.trailingPadMs} ms after speech (+ ${endpointing.silencePadMs} ms of silence), sentence end ${endpointing.sentenceEndSilenceMs || 'off'}`,
    columns: ['set', 'source', 'files', 'ref words', 'utterances (clean)', 'WER clean %', `WER ${snr} dB SNR %`],
    rows,
    notes: [
      `voices: the same 18 texts (the 8 corpus sentences, 4 with spoken digits, and the 10 call turns, each on its own); recordings: every file of pocketsphinx-testdata with a reference transcript (cards/ and librivox/), as transcribed there (one quirk kept: "a more a amiable")`,
      `noise: white Gaussian, power = speech power (over the manifest's speech spans) − ${snr} dB, added to the telephone-band PCM before mu-law, seed ${seed} (deterministic per file)`,
      `WER normalisation: case, punctuation and hyphens dropped, digits spelled one by one ("4111" = "four one one one"), "Mr."/"Mrs."/"Dr." read as spoken`,
      ...notes,
      `${Math.round(audioSeconds)} s of audio in ${seconds.toFixed(0)} s (RTF ${(seconds / audioSeconds).toFixed(3)}), ${workers} worker(s), RSS ${Math.round(rss)} MiB; corpus ${corpus.version}`,
    ],
  };
}

const pct = (wer: number) => Number((wer * 100).toFixed(1));

async function transcribe(engine: SpeechEngine, mulaw: Uint8Array): Promise<{ text: string; count: number }> {
  const stream = engine.createStream();
  const got = (await Promise.all([stream.push(mulaw), stream.flush()])).flat();
  return { text: got.map((u) => u.text).join(' '), count: got.length };
}
