import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { splitMergedDecoder } from '../../../apps/asr/src/engine/decoder-graph.js';
import { defaultModelsDir, ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import { Moonshine } from '../../../apps/asr/src/engine/moonshine.js';
import { decodeMessage, encodeMessage } from '../../../apps/asr/src/engine/protobuf-wire.js';
import { upsample2x } from '../../../apps/asr/src/engine/upsample.js';
import { mulawToFloat32 } from '../../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../../../scripts/test-audio/corpus.js';

// The real Moonshine decoder: the wire codec must carry the 20 MB model over unchanged, the
// split graphs must compute what the merged one computes (bit for bit without the int8
// projection), and the default decoder must read the corpus call as the downloaded one does.
t.setTimeout(300_000);

const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' } as const;
const LAYERS = 6;

t.test('the split decoder computes the merged decoder, step 0 and the steps after it', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const bytes = readFileSync(models.decoder);
  t.same(Buffer.from(encodeMessage(decodeMessage(bytes))), bytes, 'decode then encode gives the model back byte for byte');

  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  const track = corpus.call.tracks.agent;
  const u = track.utterances[0] as (typeof track.utterances)[number];
  const audio = upsample2x(mulawToFloat32(new Uint8Array(readFileSync(track.mulaw)).subarray((u.startMs - 500) * 8, (u.endMs + 200) * 8)));
  const encoder = await ort.InferenceSession.create(models.encoder, options);
  const hidden = (await encoder.run({ input_values: new ort.Tensor('float32', audio, [1, audio.length]) })).last_hidden_state as ort.Tensor;

  const merged = await ort.InferenceSession.create(models.decoder, options);
  const float = splitMergedDecoder(bytes);
  const int8 = splitMergedDecoder(bytes, { int8Projection: true });
  const sessions = async (s: { first: Uint8Array; later: Uint8Array }) => ({
    first: await ort.InferenceSession.create(s.first, options),
    later: await ort.InferenceSession.create(s.later, options),
  });
  const [splitFloat, splitInt8] = [await sessions(float), await sessions(int8)];
  t.teardown(() =>
    Promise.all([encoder, merged, splitFloat.first, splitFloat.later, splitInt8.first, splitInt8.later].map((s) => s.release())),
  );

  t.same([...splitFloat.first.inputNames].sort(), ['encoder_hidden_states', 'input_ids'], 'step 0 takes the token and the encoder output');
  t.notOk(splitFloat.later.inputNames.includes('use_cache_branch'), 'later steps have no branch input');
  t.notOk(splitFloat.later.inputNames.includes('encoder_hidden_states'), 'later steps use the cached encoder keys instead');
  t.equal(splitFloat.later.inputNames.length, 1 + LAYERS * 4, 'later steps take the token and the whole cache');

  // Three steps of the merged decoder, the split float one and the split int8 one, each fed
  // with its own cache and the merged decoder's tokens.
  const empty = new ort.Tensor('float32', new Float32Array(0), [1, 8, 0, 36]);
  const mergedPast: Record<string, ort.Tensor> = {};
  for (let l = 0; l < LAYERS; l++)
    for (const side of ['decoder', 'encoder']) for (const kv of ['key', 'value']) mergedPast[`past_key_values.${l}.${side}.${kv}`] = empty;
  const floatPast: Record<string, ort.Tensor> = {};
  const int8Past: Record<string, ort.Tensor> = {};
  // The encoder-side cache is made at step 0 and never changes (what later steps return for it is not a cache).
  const keep = (past: Record<string, ort.Tensor>, out: ort.InferenceSession.OnnxValueMapType, step: number) => {
    for (const name of Object.keys(out))
      if (name.startsWith('present.') && (step === 0 || name.includes('.decoder.')))
        past[name.replace('present.', 'past_key_values.')] = out[name] as ort.Tensor;
  };
  let token = 1;
  for (let step = 0; step < 3; step++) {
    const input_ids = new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]);
    const use_cache_branch = new ort.Tensor('bool', Uint8Array.of(step > 0 ? 1 : 0), [1]);
    const a = await merged.run({ input_ids, encoder_hidden_states: hidden, use_cache_branch, ...mergedPast });
    const b = await (step === 0
      ? splitFloat.first.run({ input_ids, encoder_hidden_states: hidden })
      : splitFloat.later.run({ input_ids, ...floatPast }));
    const c = await (step === 0
      ? splitInt8.first.run({ input_ids, encoder_hidden_states: hidden })
      : splitInt8.later.run({ input_ids, ...int8Past }));
    const logits = [a, b, c].map((o) => o.logits?.data as Float32Array);
    const [la, lb, lc] = logits as [Float32Array, Float32Array, Float32Array];
    t.equal(la.length, 32768, `step ${step}: logits over the vocabulary`);
    t.same(lb, la, `step ${step}: split float logits equal the merged decoder's, bit for bit`);
    const top = (l: Float32Array) => l.indexOf(Math.max(...l.filter((_, i) => !(step === 0 && i === 2))));
    t.equal(top(lc), top(la), `step ${step}: the int8 projection picks the same token`);
    let worst = 0;
    for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs((lc[i] as number) - (la[i] as number)));
    const spread = Math.max(...la) - Math.min(...la);
    t.ok(
      worst > 0 && worst < spread * 0.05,
      `step ${step}: int8 logits differ (quantized), by at most ${worst.toFixed(3)} of a ${spread.toFixed(1)} range`,
    );
    keep(mergedPast, a, step);
    keep(floatPast, b, step);
    keep(int8Past, c, step);
    token = top(la);
  }
});

t.test('the default decoder reads the corpus call as the downloaded one does', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  const [asShipped, byDefault] = await Promise.all([
    Moonshine.load({ encoderPath: models.encoder, decoderPath: models.decoder, decoder: 'merged' }),
    Moonshine.load({ encoderPath: models.encoder, decoderPath: models.decoder }),
  ]);
  t.teardown(() => Promise.all([asShipped.close(), byDefault.close()]));
  for (const role of ['customer', 'agent'] as const) {
    const track = corpus.call.tracks[role];
    const mulaw = new Uint8Array(readFileSync(track.mulaw));
    for (const [i, u] of track.utterances.entries()) {
      const audio = upsample2x(mulawToFloat32(mulaw.subarray((u.startMs - 500) * 8, (u.endMs + 200) * 8)));
      const [a, b] = [await asShipped.recognize(audio), await byDefault.recognize(audio)];
      t.ok(a.text.length > 0, `${role} #${i + 1}: "${a.text}"`);
      t.equal(b.text, a.text, `${role} #${i + 1}: the same text`);
    }
  }
});

t.test('a model that is not the merged decoder is refused with a clear error', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  t.throws(() => splitMergedDecoder(readFileSync(models.encoder)), /decoder graph: the main graph is not one If node/);
  t.throws(() => splitMergedDecoder(readFileSync(models.decoder).subarray(0, 1000)), /protobuf: field \d+ runs past the end/);
});
