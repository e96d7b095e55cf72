import { readFileSync } from 'node:fs';
import t from 'tap';
import { defaultModelsDir, ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import { SileroVad, VAD_WINDOW } from '../../../apps/asr/src/engine/silero-vad.js';
import { mulawToFloat32 } from '../../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../../../scripts/test-audio/corpus.js';

// The real Silero model on corpus speech: windows of many streams run in one batch, and each
// stream must get exactly the probabilities it gets alone (the endpoints, hence the utterance
// ids, must not depend on how many calls share the process).
t.setTimeout(300_000);

async function probabilities(vad: SileroVad, audio: Float32Array): Promise<number[]> {
  const state = SileroVad.createState();
  const out: number[] = [];
  for (let at = 0; at + VAD_WINDOW <= audio.length; at += VAD_WINDOW)
    out.push(await vad.probability(state, audio.subarray(at, at + VAD_WINDOW)));
  return out;
}

t.test('batched windows give each stream the probabilities it gets alone', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  const vad = await SileroVad.load(models.vad);
  t.teardown(() => vad.close());
  // Six streams of different audio (the two call tracks and four sentences), 20 s at most each.
  const tracks = [corpus.call.tracks.customer, corpus.call.tracks.agent, ...corpus.sentences.slice(0, 4)];
  const audios = tracks.map((track) => mulawToFloat32(new Uint8Array(readFileSync(track.mulaw))).subarray(0, 20 * 8000));

  const alone: number[][] = [];
  for (const audio of audios) alone.push(await probabilities(vad, audio)); // one stream at a time: batches of 1
  t.equal(vad.counts.runs, vad.counts.windows, 'alone, every run holds one window');

  const before = { ...vad.counts };
  const together = await Promise.all(audios.map((audio) => probabilities(vad, audio)));
  const runs = vad.counts.runs - before.runs;
  const windows = vad.counts.windows - before.windows;
  t.equal(windows, alone.flat().length);
  t.ok(runs < windows / 3, `batched: ${windows} windows in ${runs} runs`);
  for (let i = 0; i < audios.length; i++) t.same(together[i], alone[i], `stream ${i}: the same probabilities, bit for bit`);
  t.ok(
    alone.flat().some((p) => p > 0.5),
    'there is speech in the audio (the comparison is not over silence only)',
  );
});
