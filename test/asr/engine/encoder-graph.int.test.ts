import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { hasInt8DotProduct, rewriteEncoder } from '../../../apps/asr/src/engine/encoder-graph.js';
import { defaultModelsDir, ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import { Moonshine } from '../../../apps/asr/src/engine/moonshine.js';
import { decodeMessage, initializerName, ONNX, parseNode } from '../../../apps/asr/src/engine/protobuf-wire.js';
import { corpusUtterances } from '../support/corpus-utterances.js';

// The real Moonshine encoder, rewritten at load (encoder-graph.ts): with signed weights it must
// compute what the downloaded encoder computes and read the corpus call the same way; the int8
// conv variant is measured against it with a looser bound.
t.setTimeout(300_000);

const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' } as const;

/** Data type of each MatMulInteger weight and each Conv, by name. */
function describe(model: Uint8Array) {
  const graph = decodeMessage(decodeMessage(model).find((f) => f.no === ONNX.model.graph)?.data ?? new Uint8Array());
  const nodes = graph.filter((f) => f.no === ONNX.graph.node).map(parseNode);
  const types = new Map<string, number>();
  for (const f of graph.filter((x) => x.no === ONNX.graph.initializer))
    types.set(initializerName(f), decodeMessage(f.data).find((x) => x.no === ONNX.tensor.dataType)?.data[0] ?? -1);
  const weights = nodes
    .filter((n) => n.opType === 'MatMulInteger')
    .map((n) => [types.get(n.inputs[1] ?? ''), types.get(n.inputs[3] ?? '')]);
  return { weights, convs: nodes.filter((n) => n.opType === 'Conv').map((n) => n.name) };
}

/** Largest |a − b| and the root-mean-square difference relative to the RMS of a. */
function difference(a: Float32Array, b: Float32Array): { worst: number; relative: number } {
  let worst = 0;
  let squared = 0;
  let power = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    worst = Math.max(worst, d);
    squared += d * d;
    power += (a[i] as number) ** 2;
  }
  return { worst, relative: Math.sqrt(squared / power) };
}

t.test('the rewritten encoders against the downloaded one, on the corpus call', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const bytes = readFileSync(models.encoder);
  t.same(Buffer.from(rewriteEncoder(bytes, {})), bytes, 'no option: the model comes back byte for byte');

  const shipped = describe(bytes);
  const signedModel = rewriteEncoder(bytes, { signedWeights: true });
  const signed = describe(signedModel);
  t.equal(shipped.weights.length, 36, 'the encoder has 36 int8 layers');
  t.ok(
    shipped.weights.every(([w, z]) => w === ONNX.dataType.uint8 && z === ONNX.dataType.uint8),
    'as downloaded, their weights are uint8',
  );
  t.ok(
    signed.weights.every(([w, z]) => w === ONNX.dataType.int8 && z === ONNX.dataType.int8),
    'rewritten, weights and zero points are int8',
  );
  const convModel = rewriteEncoder(bytes, { signedWeights: true, int8Convs: ['/conv2/Conv'] });
  t.same(describe(convModel).convs, ['/conv1/Conv', '/conv3/Conv'], 'conv2 is no longer a float Conv');

  const [original, withSigned, withConv] = await Promise.all([
    ort.InferenceSession.create(models.encoder, options),
    ort.InferenceSession.create(signedModel, options),
    ort.InferenceSession.create(convModel, options),
  ]);
  t.teardown(() => Promise.all([original, withSigned, withConv].map((s) => s.release())));
  const run = async (s: ort.InferenceSession, audio: Float32Array) => {
    const out = (await s.run({ input_values: new ort.Tensor('float32', audio, [1, audio.length]) })).last_hidden_state as ort.Tensor;
    return { dims: out.dims, data: out.data as Float32Array };
  };
  const exact = hasInt8DotProduct();
  for (const { label, audio } of corpusUtterances().slice(0, 4)) {
    const [a, b, c] = [await run(original, audio), await run(withSigned, audio), await run(withConv, audio)];
    t.same(b.dims, a.dims, `${label}: signed, same shape`);
    const signedDiff = difference(a.data, b.data);
    // Shifting both the weights and their zero point leaves every product as it was; the
    // kernel changes, so only rounding of the float rescale could differ, and with VNNI not even that.
    if (exact) t.equal(signedDiff.worst, 0, `${label}: signed, bit-identical output (VNNI)`);
    else t.ok(signedDiff.relative < 1e-3, `${label}: signed, output within 1e-3 RMS (${signedDiff.relative.toExponential(1)})`);
    t.same(c.dims, a.dims, `${label}: conv2 int8, same shape`);
    const convDiff = difference(a.data, c.data);
    t.ok(
      convDiff.relative > 0 && convDiff.relative < 0.2,
      `${label}: conv2 int8 differs (its input quantized), RMS ${convDiff.relative.toFixed(3)} of the output's`,
    );
  }
});

t.test('the default encoder reads the corpus call as the downloaded one does', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const [asShipped, signed] = await Promise.all([
    Moonshine.load({ encoderPath: models.encoder, decoderPath: models.decoder, encoder: 'as-shipped' }),
    Moonshine.load({ encoderPath: models.encoder, decoderPath: models.decoder, encoder: 'signed' }),
  ]);
  t.teardown(() => Promise.all([asShipped.close(), signed.close()]));
  for (const { label, audio } of corpusUtterances()) {
    const [a, b] = [await asShipped.recognize(audio), await signed.recognize(audio)];
    t.ok(a.text.length > 0, `${label}: "${a.text}"`);
    t.equal(b.text, a.text, `${label}: the same text`);
  }
});

t.test('VNNI detection and refusals', async (t) => {
  const flags = (f: string) => () => `processor\t: 0\nflags\t\t: fpu sse2 avx2 ${f}\n`;
  t.ok(hasInt8DotProduct('x64', flags('avx512f avx512_vnni')), 'AVX512-VNNI');
  t.ok(hasInt8DotProduct('x64', flags('avx_vnni')), 'AVX-VNNI');
  t.notOk(hasInt8DotProduct('x64', flags('avx512f fma')), 'AVX2 / AVX-512 without VNNI: the uint8 weights stay');
  t.notOk(hasInt8DotProduct('arm64', flags('avx512_vnni')), 'not x64');
  t.notOk(
    hasInt8DotProduct('x64', () => {
      throw new Error('ENOENT');
    }),
    'no /proc/cpuinfo',
  );

  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const bytes = readFileSync(models.encoder);
  t.throws(() => rewriteEncoder(bytes, { int8Convs: ['/conv9/Conv'] }), /encoder graph: no Conv \/conv9\/Conv/);
  t.throws(() => rewriteEncoder(readFileSync(models.vad), { signedWeights: true }), /encoder graph: no MatMulInteger/);
});
