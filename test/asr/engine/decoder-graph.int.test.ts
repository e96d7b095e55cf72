import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { splitMergedDecoder } from '../../../apps/asr/src/engine/decoder-graph.js';
import { hasInt8DotProduct, rewriteEncoder, signInt8Weights } from '../../../apps/asr/src/engine/encoder-graph.js';
import { defaultModelsDir, ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import { Moonshine, maxTokensFor } from '../../../apps/asr/src/engine/moonshine.js';
import {
  type Dim,
  decodeMessage,
  encodeMessage,
  initializerName,
  makeNode,
  messageField,
  ONNX,
  type OnnxNode,
  parseNode,
  stringField,
  strings,
  valueInfoDims,
  varintField,
  type WireField,
} from '../../../apps/asr/src/engine/protobuf-wire.js';
import { upsample2x } from '../../../apps/asr/src/engine/upsample.js';
import { mulawToFloat32 } from '../../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../../../scripts/test-audio/corpus.js';
import { corpusUtterances } from '../support/corpus-utterances.js';

// The real Moonshine decoder: the wire codec must carry the 20 MB model over unchanged, the
// split graphs must compute what the merged one computes (bit for bit without the int8
// projection), the signed-weight split must compute what the unsigned one does (bit for bit
// with VNNI), and the default decoder must read the corpus call as the downloaded one does.
t.setTimeout(300_000);

const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' } as const;
const LAYERS = 6;

/** Data types of a model's initializers, and the nodes of its graph. */
function describe(model: Uint8Array) {
  const graph = decodeMessage(decodeMessage(model).find((f) => f.no === ONNX.model.graph)?.data ?? new Uint8Array());
  const types = new Map<string, number>();
  for (const f of graph.filter((x) => x.no === ONNX.graph.initializer))
    types.set(initializerName(f), decodeMessage(f.data).find((x) => x.no === ONNX.tensor.dataType)?.data[0] ?? -1);
  return { types, nodes: graph.filter((f) => f.no === ONNX.graph.node).map(parseNode) };
}

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

t.test('the signed-weight split decoder computes the unsigned one, every step of the 10 corpus utterances', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const bytes = readFileSync(models.decoder);
  const unsigned = splitMergedDecoder(bytes, { int8Projection: true });
  const signed = splitMergedDecoder(bytes, { int8Projection: true, signedSteps: ['first', 'later'] });
  const firstOnly = splitMergedDecoder(bytes, { int8Projection: true, signedSteps: ['first'] });
  t.ok(
    Buffer.from(firstOnly.first).equals(signed.first) && Buffer.from(firstOnly.later).equals(unsigned.later),
    "signedSteps ['first'] (the default with VNNI): the first-step graph signed, the later-step graph as before",
  );
  const { uint8, int8 } = ONNX.dataType;
  for (const step of ['first', 'later'] as const) {
    const [before, after] = [describe(unsigned[step]), describe(signed[step])];
    t.same([...after.types.keys()].sort(), [...before.types.keys()].sort(), `${step}: the same initializers`);
    t.same(
      after.nodes.map((n) => n.fields),
      before.nodes.map((n) => n.fields),
      `${step}: the same nodes`,
    );
    const layers = before.nodes.filter((n) => n.opType === 'MatMulInteger');
    t.equal(layers.length, step === 'first' ? 61 : 49, `${step}: ${layers.length} int8 layers (the projection among them)`);
    const bSides = layers.flatMap((n) => [n.inputs[1], n.inputs[3]]);
    const weights = [...new Set(bSides.filter((w): w is string => before.types.has(w ?? '')))];
    t.equal(
      bSides.filter((w) => !before.types.has(w ?? '')).length,
      1,
      `${step}: every B side is an initializer but the transposed embedding`,
    );
    t.ok(
      weights.every((w) => before.types.get(w) === uint8 && after.types.get(w) === int8),
      `${step}: weights and zero points uint8 as downloaded, int8 rewritten`,
    );
    // The projection multiplies Transpose(embedding table); the table is also gathered and
    // dequantized for the input token with the same zero point: all of it shifts together.
    const table = 'model.decoder.embed_tokens.weight_merged_0_quantized';
    const zero = 'model.decoder.embed_tokens.weight_merged_0_zero_point';
    t.ok(
      before.nodes.some((n) => n.opType === 'Transpose' && n.inputs[0] === table) &&
        before.nodes.some((n) => n.opType === 'DequantizeLinear' && n.inputs[2] === zero),
      `${step}: the projection's weights are the transposed embedding table, also dequantized after the Gather`,
    );
    t.same([before.types.get(table), after.types.get(table)], [uint8, int8], `${step}: the embedding table is shifted`);
    const shifted = [...after.types].filter(([name, type]) => type !== before.types.get(name)).map(([name]) => name);
    t.equal(shifted.length, weights.length + 1, `${step}: nothing else changes type`);
  }

  const sessions = async (s: { first: Uint8Array; later: Uint8Array }) => ({
    first: await ort.InferenceSession.create(s.first, options),
    later: await ort.InferenceSession.create(s.later, options),
  });
  const encoder = await ort.InferenceSession.create(models.encoder, options);
  const [a, b] = [await sessions(unsigned), await sessions(signed)];
  t.teardown(() => Promise.all([encoder, a.first, a.later, b.first, b.later].map((s) => s.release())));
  // With VNNI (the only place the engine shifts) both kernels sum exactly in 32 bits; elsewhere
  // the uint8 × int8 kernel may saturate 16-bit sums, so only closeness is asked there.
  const exact = hasInt8DotProduct();
  let steps = 0;
  for (const { label, audio } of corpusUtterances()) {
    const hidden = (await encoder.run({ input_values: new ort.Tensor('float32', audio, [1, audio.length]) }))
      .last_hidden_state as ort.Tensor;
    const pastA: Record<string, ort.Tensor> = {};
    const pastB: Record<string, ort.Tensor> = {};
    const keep = (past: Record<string, ort.Tensor>, out: ort.InferenceSession.OnnxValueMapType, step: number) => {
      for (const name of Object.keys(out))
        if (name.startsWith('present.') && (step === 0 || name.includes('.decoder.')))
          past[name.replace('present.', 'past_key_values.')] = out[name] as ort.Tensor;
    };
    let token = 1;
    let worst = 0;
    let sameTokens = true;
    const tokens: number[] = [];
    for (let step = 0; step < maxTokensFor(audio.length / 16000); step++) {
      const input_ids = new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]);
      const [outA, outB] =
        step === 0
          ? [
              await a.first.run({ input_ids, encoder_hidden_states: hidden }),
              await b.first.run({ input_ids, encoder_hidden_states: hidden }),
            ]
          : [await a.later.run({ input_ids, ...pastA }), await b.later.run({ input_ids, ...pastB })];
      const [la, lb] = [outA.logits?.data as Float32Array, outB.logits?.data as Float32Array];
      for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs((la[i] as number) - (lb[i] as number)));
      const top = (l: Float32Array) => l.indexOf(Math.max(...l.filter((_, i) => !(step === 0 && i === 2))));
      token = top(la);
      sameTokens &&= top(lb) === token;
      steps++;
      if (token === 2) break;
      tokens.push(token);
      keep(pastA, outA, step);
      keep(pastB, outB, step);
    }
    if (exact) t.equal(worst, 0, `${label}: ${tokens.length + 1} steps, logits bit-identical (VNNI)`);
    else t.ok(worst < 0.05, `${label}: ${tokens.length + 1} steps, logits within 0.05 (${worst.toExponential(1)}; no VNNI)`);
    t.ok(sameTokens && tokens.length > 0, `${label}: the same ${tokens.length} tokens`);
  }
  t.ok(steps > 100, `${steps} decoder steps compared`);

  const engines = await Promise.all(
    (['split-int8', 'split-signed-first', 'split-signed'] as const).map((decoder) =>
      Moonshine.load({ encoderPath: models.encoder, decoderPath: models.decoder, decoder }),
    ),
  );
  t.teardown(() => Promise.all(engines.map((e) => e.close())));
  const [asBefore, firstSigned, bothSigned] = engines as [Moonshine, Moonshine, Moonshine];
  for (const { label, audio } of corpusUtterances()) {
    const [x, y, z] = [await asBefore.recognize(audio), await firstSigned.recognize(audio), await bothSigned.recognize(audio)];
    t.ok(x.text.length > 0, `${label}: "${x.text}"`);
    t.equal(y.text, x.text, `${label}: split-signed-first reads the same text as split-int8`);
    t.equal(z.text, x.text, `${label}: split-signed, the same text`);
  }
});

t.test('batchOfOne: inputs declare one utterance and one token; the same token at every step; a batch of two is refused', async (t) => {
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const bytes = readFileSync(models.decoder);
  const declared = splitMergedDecoder(bytes, { int8Projection: true, signedSteps: ['first'] });
  const fixed = splitMergedDecoder(bytes, { int8Projection: true, signedSteps: ['first'], batchOfOne: true });
  const inputDims = (model: Uint8Array) => {
    const graph = decodeMessage(decodeMessage(model).find((f) => f.no === ONNX.model.graph)?.data ?? new Uint8Array());
    const dims = new Map<string, Dim[]>();
    for (const f of graph.filter((x) => x.no === ONNX.graph.input)) {
      const info = decodeMessage(f.data);
      dims.set(strings(info, ONNX.valueInfo.name)[0] ?? '', valueInfoDims(info));
    }
    return dims;
  };
  const [laterBefore, laterAfter, firstAfter] = [inputDims(declared.later), inputDims(fixed.later), inputDims(fixed.first)];
  t.same(laterBefore.get('input_ids'), ['batch_size', 'decoder_sequence_length'], 'as downloaded: batch and token count named');
  t.same(laterAfter.get('input_ids'), [1, 1], 'one utterance, one token');
  t.same(laterAfter.get('past_key_values.0.decoder.key'), [1, 8, 'past_decoder_sequence_length', 36], 'the cache length stays free');
  t.same(firstAfter.get('encoder_hidden_states')?.[0], 1, 'step 0: one utterance of encoder output');
  t.ok(
    [...laterAfter.values(), ...firstAfter.values()].every((d) => !d.includes('batch_size')),
    'no input keeps a free batch size',
  );

  const sessions = async (s: { first: Uint8Array; later: Uint8Array }) => ({
    first: await ort.InferenceSession.create(s.first, options),
    later: await ort.InferenceSession.create(s.later, options),
  });
  const encoderBytes = readFileSync(models.encoder);
  const [encoder, encoderFixed] = await Promise.all([
    ort.InferenceSession.create(rewriteEncoder(encoderBytes, { signedWeights: true }), options),
    ort.InferenceSession.create(rewriteEncoder(encoderBytes, { signedWeights: true, batchOfOne: true }), options),
  ]);
  const [a, b] = [await sessions(declared), await sessions(fixed)];
  t.teardown(() => Promise.all([encoder, encoderFixed, a.first, a.later, b.first, b.later].map((s) => s.release())));
  const bitsEqual = (x: ort.Tensor | undefined, y: ort.Tensor | undefined) =>
    x !== undefined && y !== undefined && Buffer.from((x.data as Float32Array).buffer).equals(Buffer.from((y.data as Float32Array).buffer));
  // With the sizes known onnxruntime fuses some kernels differently: sums in another order move
  // the last bits of a float (seen: up to ~4e-6 on logits spanning ~30), never a token here.
  let steps = 0;
  let worst = 0;
  for (const { label, audio } of corpusUtterances()) {
    const input_values = new ort.Tensor('float32', audio, [1, audio.length]);
    const [hiddenA, hiddenB] = [
      (await encoder.run({ input_values })).last_hidden_state as ort.Tensor,
      (await encoderFixed.run({ input_values })).last_hidden_state as ort.Tensor,
    ];
    t.ok(bitsEqual(hiddenA, hiddenB), `${label}: encoder output bit-identical`);
    const decode = async (s: typeof a, hidden: ort.Tensor, reference?: { tokens: number[]; logitsPerStep: number[][] }) => {
      const past: Record<string, ort.Tensor> = {};
      const tokens: number[] = [];
      const logitsPerStep: number[][] = [];
      let token = 1;
      for (let step = 0; step < maxTokensFor(audio.length / 16000) && token !== 2; step++) {
        // Each graph is fed the declared graph's token, so a flip would show at its step.
        const input_ids = new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]);
        const out = await (step === 0 ? s.first.run({ input_ids, encoder_hidden_states: hidden }) : s.later.run({ input_ids, ...past }));
        for (const name of Object.keys(out))
          if (name.startsWith('present.') && (step === 0 || name.includes('.decoder.')))
            past[name.replace('present.', 'past_key_values.')] = out[name] as ort.Tensor;
        const logits = out.logits?.data as Float32Array;
        const mine = logits.indexOf(Math.max(...logits.filter((_, i) => !(step === 0 && i === 2))));
        tokens.push(mine);
        logitsPerStep.push([...logits]);
        const theirs = reference?.logitsPerStep[step];
        if (theirs) {
          let diff = 0;
          for (let i = 0; i < logits.length; i++) diff = Math.max(diff, Math.abs((logits[i] as number) - (theirs[i] as number)));
          worst = Math.max(worst, diff / (Math.max(...theirs) - Math.min(...theirs)));
        }
        token = reference?.tokens[step] ?? mine;
      }
      return { tokens, logitsPerStep };
    };
    const before = await decode(a, hiddenA);
    const after = await decode(b, hiddenB, before);
    t.same(after.tokens, before.tokens, `${label}: the same ${before.tokens.length} tokens at every step`);
    steps += before.tokens.length;
  }
  t.ok(steps > 100, `${steps} decoder steps compared`);
  t.ok(worst < 0.05, `logits move by at most ${(100 * worst).toFixed(2)} % of their range (declared graphs: the reference)`);

  const two = new ort.Tensor('int64', BigInt64Array.of(1n, 1n), [2, 1]);
  const emptyCache = Object.fromEntries(
    b.later.inputNames.filter((n) => n !== 'input_ids').map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [2, 8, 0, 36])]),
  );
  await t.rejects(b.later.run({ input_ids: two, ...emptyCache }), /input_ids|dimension/i, 'a batch of two is refused by the fixed graph');
});

t.test('the weight shift refuses a graph where it would not cancel', async (t) => {
  const fail = (why: string): never => {
    throw new Error(why);
  };
  const u8 = (name: string, values: number[]): [string, WireField] => [
    name,
    messageField(ONNX.graph.initializer, [
      varintField(ONNX.tensor.dims, values.length),
      varintField(ONNX.tensor.dataType, ONNX.dataType.uint8),
      stringField(ONNX.tensor.name, name),
      { no: ONNX.tensor.rawData, wire: 2, data: Uint8Array.from(values) },
    ]),
  ];
  const initializers = new Map([u8('w', [0, 127, 128, 255]), u8('wz', [129]), u8('other', [3])]);
  const shift = (nodes: OnnxNode[], outputs: string[] = []) => signInt8Weights(nodes, initializers, new Set(outputs), fail);
  const shifted = (nodes: OnnxNode[]) => [...shift(nodes).initializers.keys()].sort();
  const matmul = makeNode('mm', 'MatMulInteger', ['x', 'w', 'xz', 'wz'], ['y']);
  const alone = shift([matmul], ['y']);
  t.same([...alone.initializers.keys()].sort(), ['w', 'wz'], 'a MatMulInteger alone: its weights and zero point shift');
  const raw = (name: string) =>
    decodeMessage(alone.initializers.get(name)?.data ?? new Uint8Array()).find((f) => f.no === ONNX.tensor.rawData)?.data;
  t.same([...Int8Array.from(raw('w') ?? [])], [-128, -1, 0, 127], 'w − 128');
  t.same([...Int8Array.from(raw('wz') ?? [])], [1], 'z − 128');

  const gathered = shift([
    matmul,
    makeNode('g', 'Gather', ['w', 'ids'], ['e']),
    makeNode('dq', 'DequantizeLinear', ['e', 's', 'wz'], ['f']),
  ]);
  t.same([...gathered.initializers.keys()].sort(), ['w', 'wz'], 'Gather → DequantizeLinear with the same zero point: exact');
  t.same([...gathered.int8Values], ['e'], 'the gathered rows are int8 now');
  t.throws(
    () => shift([matmul, makeNode('add', 'Add', ['w', 'x'], ['z'])]),
    /w \(shifted to int8\) is read by Add add/,
    'a reader that would see the shifted values',
  );
  t.throws(
    () => shift([matmul, makeNode('dq', 'DequantizeLinear', ['dynamic', 's', 'wz'], ['f'])]),
    /dq: wz is shifted but its partner is not an initializer/,
    'a shared zero point whose other tensor cannot shift',
  );
  t.same(
    shifted([matmul, makeNode('dq', 'DequantizeLinear', ['other', 's', 'wz'], ['f'])]),
    ['other', 'w', 'wz'],
    'a shared zero point pulls its partner into the shift',
  );
  t.throws(
    () => shift([matmul, makeNode('tr', 'Transpose', ['w'], ['wt'])], ['wt']),
    /wt \(shifted to int8\) is a graph output/,
    'a shifted value that leaves the graph',
  );
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

  // An export whose token input names its sizes otherwise: batchOfOne cannot fix them and says so.
  const renamed = (bytes: Uint8Array) => {
    const model = decodeMessage(bytes);
    const graph = decodeMessage(model.find((f) => f.no === ONNX.model.graph)?.data ?? new Uint8Array());
    const dim = (name: string) => messageField(ONNX.shape.dim, [stringField(ONNX.dimension.param, name)]);
    const shape = messageField(ONNX.tensorType.shape, [dim('batch'), dim('tokens')]);
    const retyped = graph.map((f) => {
      const info = f.no === ONNX.graph.input ? decodeMessage(f.data) : [];
      if (strings(info, ONNX.valueInfo.name)[0] !== 'input_ids') return f;
      const type = decodeMessage(info.find((x) => x.no === ONNX.valueInfo.type)?.data ?? new Uint8Array());
      const tensor = decodeMessage(type.find((x) => x.no === ONNX.type.tensor)?.data ?? new Uint8Array());
      const newType = messageField(ONNX.valueInfo.type, [
        messageField(ONNX.type.tensor, [...tensor.filter((x) => x.no !== ONNX.tensorType.shape), shape]),
      ]);
      return messageField(
        ONNX.graph.input,
        info.map((x) => (x.no === ONNX.valueInfo.type ? newType : x)),
      );
    });
    return encodeMessage(model.map((f) => (f.no === ONNX.model.graph ? messageField(ONNX.model.graph, retyped) : f)));
  };
  const odd = renamed(readFileSync(models.decoder));
  t.ok(splitMergedDecoder(odd, { int8Projection: true }), 'without batchOfOne such an export still splits');
  t.throws(
    () => splitMergedDecoder(odd, { int8Projection: true, batchOfOne: true }),
    /decoder graph: input_ids is \[batch,tokens\] after fixing the batch and token sizes, not \[1,1\]/,
  );
});
