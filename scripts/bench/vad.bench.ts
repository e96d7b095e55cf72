import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { defaultModelsDir, ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { SileroVad, VAD_WINDOW } from '../../apps/asr/src/engine/silero-vad.js';
import { mulawToFloat32 } from '../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../test-audio/corpus.js';
import type { BenchResult } from './run.js';

/**
 * Silero VAD v5 (the asr's endpointing model) with N streams at once: each stream awaits its
 * window before the next, as the recognizer streams do, so the shared SileroVad runs the windows
 * of all N in one batch. CPU time of this process per window is the measure: how much of a core
 * VAD costs per call (a call = 2 streams × 31.25 windows/s).
 *
 *   npm run bench -- vad [--streams 1,2,5,10,20,50] [--seconds 20]
 */
const WARM_UP_WINDOWS = 200;

export async function run(args: string[]): Promise<BenchResult> {
  const value = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const counts = (value('streams') ?? '1,2,5,10,20,50').split(',').map(Number);
  const seconds = Number(value('seconds') ?? 20);
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio();
  const vad = await SileroVad.load(models.vad);
  // Real speech: the corpus call's two tracks, each stream starting at its own offset.
  const tracks = [corpus.call.tracks.customer, corpus.call.tracks.agent].map((t) => mulawToFloat32(new Uint8Array(readFileSync(t.mulaw))));
  const load = loadavg()[0] as number;
  // Warm-up, not measured: the first runs pay for JIT and onnxruntime's arena at each batch
  // size, which made the first row (one stream) look twice as costly as it is.
  for (const n of [...new Set(counts)]) {
    await Promise.all(
      Array.from({ length: n }, async () => {
        const state = SileroVad.createState();
        for (let w = 0; w < WARM_UP_WINDOWS; w++) await vad.probability(state, (tracks[0] as Float32Array).subarray(0, VAD_WINDOW));
      }),
    );
  }
  const rows: (string | number)[][] = [];
  for (const n of counts) {
    const windows = Math.floor((seconds * 8000) / VAD_WINDOW);
    const before = { ...vad.counts };
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, async (_, s) => {
        const audio = tracks[s % 2] as Float32Array;
        const state = SileroVad.createState();
        const offset = ((s * 7919) % Math.floor(audio.length / VAD_WINDOW / 2)) * VAD_WINDOW;
        for (let w = 0; w < windows; w++) {
          const at = (offset + w * VAD_WINDOW) % (audio.length - VAD_WINDOW);
          await vad.probability(state, audio.subarray(at, at + VAD_WINDOW));
        }
      }),
    );
    const wall = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    const total = n * windows;
    const runs = vad.counts.runs - before.runs;
    const cpuPerWindowMs = (used.user + used.system) / 1000 / total;
    rows.push([
      n,
      total,
      (total / runs).toFixed(1),
      cpuPerWindowMs.toFixed(3),
      (cpuPerWindowMs * 2 * 31.25 * 100) / 1000,
      (total / wall) * 1000,
    ]);
  }
  await vad.close();
  return {
    title: `Silero VAD v5, 8 kHz, 256-sample windows: N concurrent streams batched into one onnxruntime run (1 thread), ${seconds} s of corpus speech per stream`,
    columns: ['streams', 'windows', 'mean batch', 'CPU ms per window', 'VAD CPU % of a core per call', 'windows/s'],
    rows,
    notes: [
      'One stream alone is the old cost (every window its own run): the per-run overhead dominates, so CPU per window falls as more streams share a run. Probabilities are bit-identical batched or not (test/asr/engine/vad-batching.int.test.ts).',
      `load average at start ${load.toFixed(1)} (2 cores); CPU time is of this process (onnxruntime runs on it); ${WARM_UP_WINDOWS} windows per stream at each batch size first, not measured`,
    ],
  };
}
