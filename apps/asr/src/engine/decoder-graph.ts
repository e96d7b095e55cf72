import { signInt8Weights } from './encoder-graph.js';
import {
  decodeMessage,
  encodeMessage,
  fixInputSizes,
  initializerName,
  intAttribute,
  makeNode,
  messageField,
  ONNX,
  type OnnxNode,
  parseNode,
  stringField,
  strings,
  valueInfoDims,
  type WireField,
} from './protobuf-wire.js';

/**
 * Rewrites Moonshine's merged decoder (one `If` node choosing between a first step without KV
 * cache and later steps with it) into two plain graphs, and runs its output projection in
 * int8. Both changes were profiled (docs/benchmarks.md, "asr optimizations"):
 *
 * - The `If` costs a subgraph frame on every token; as two sessions the branch is chosen by
 *   us, and later steps no longer take `encoder_hidden_states` (they use the cached keys).
 * - The projection onto the 32768-token vocabulary (the tied embedding, stored as uint8) was a
 *   float MatMul after a DequantizeLinear: the largest node of a step. It becomes the pattern
 *   the model's other layers already use (DynamicQuantizeLinear → MatMulInteger → scale),
 *   which onnxruntime fuses into one int8 kernel. The activation is quantized per token, so
 *   logits move slightly; the corpus call decodes to the same text, and the accuracy corpus's WER
 *   moved 15.1 → 15.1 % clean, 31.0 → 31.1 % at 15 dB SNR (82 files) when this became the default.
 * - `signedSteps` (where the CPU has VNNI): in the named graphs, the int8 layers' uint8 weights
 *   and zero points shifted into int8, as the encoder's (encoder-graph.ts `signInt8Weights`: the
 *   same products, onnxruntime's uint8 × int8 kernels; logits bit-identical). It reaches the
 *   projection too: its weights are the tied embedding (uint8), also gathered for the input
 *   token and dequantized with the same zero point, so the whole table and that zero point shift
 *   and the dequantized embedding is unchanged. It pays in the first step, whose cross-attention
 *   keys and values are products over every encoder frame; later steps multiply one row and
 *   measured no faster (docs/benchmarks.md, "Change 8").
 * - `batchOfOne`: we decode one utterance, one token per step, so the inputs' `batch_size` and
 *   `decoder_sequence_length` are declared as 1. onnxruntime then folds the shape arithmetic
 *   built on them (the later-step graph optimizes to 480 nodes instead of 730) and fuses a few
 *   kernels differently: the logits move in their last bits (~1e-6), the tokens do not, and a
 *   decode takes 4-15 % less CPU (docs/benchmarks.md, "Change 12").
 *
 * Done in memory at load (a few ms on the 20 MB file), so the pinned download stays the only
 * file on disk. ONNX field numbers are those of onnx.proto; every field not named here is
 * carried over unchanged.
 */
const { model: MODEL, graph: GRAPH, node: NODE, attribute: ATTRIBUTE, tensor: TENSOR, valueInfo: VALUE_INFO } = ONNX;

export interface SplitDecoder {
  /** Step 0: inputs `input_ids`, `encoder_hidden_states`. */
  readonly first: Uint8Array;
  /** Steps ≥ 1: inputs `input_ids` and every `past_key_values.*`. */
  readonly later: Uint8Array;
}

function fail(why: string): never {
  throw new Error(`decoder graph: ${why} (is this the pinned Moonshine merged decoder?)`);
}

export interface DecoderRewrite {
  readonly int8Projection?: boolean;
  /** The graphs whose int8 weights are shifted to int8. */
  readonly signedSteps?: readonly ('first' | 'later')[];
  /** Batch and new-token sizes fixed at 1 in the inputs' declared shapes. */
  readonly batchOfOne?: boolean;
}

/** The sizes `batchOfOne` fixes: one utterance, one new token per step. */
const ONE_SEQUENCE = { batch_size: 1, decoder_sequence_length: 1 };

export function splitMergedDecoder(model: Uint8Array, options: DecoderRewrite = {}): SplitDecoder {
  const modelFields = decodeMessage(model);
  const graphField = modelFields.find((f) => f.no === MODEL.graph) ?? fail('no graph');
  const graph = decodeMessage(graphField.data);
  const mainNodes = graph.filter((f) => f.no === GRAPH.node).map(parseNode);
  const ifNode = mainNodes.length === 1 && mainNodes[0]?.opType === 'If' ? mainNodes[0] : fail('the main graph is not one If node');
  const branch = (name: string): WireField[] => {
    for (const a of ifNode.fields.filter((f) => f.no === NODE.attribute)) {
      const attribute = decodeMessage(a.data);
      if (strings(attribute, ATTRIBUTE.name)[0] !== name) continue;
      const g = attribute.find((f) => f.no === ATTRIBUTE.g) ?? fail(`${name} has no graph`);
      return decodeMessage(g.data);
    }
    return fail(`no ${name}`);
  };
  const initializers = graph.filter((f) => f.no === GRAPH.initializer || f.no === GRAPH.sparseInitializer);
  const initializerNames = initializers.map((f) => initializerName(f, f.no === GRAPH.sparseInitializer));
  const inputs = graph.filter((f) => f.no === GRAPH.input);
  const inputNames = inputs.map((f) => strings(decodeMessage(f.data), VALUE_INFO.name)[0] ?? '');

  const build = (branchName: string, step: 'first' | 'later'): Uint8Array => {
    const body = branch(branchName);
    let nodes = body.filter((f) => f.no === GRAPH.node).map(parseNode);
    for (const n of nodes) if (['If', 'Loop', 'Scan'].includes(n.opType)) fail(`${branchName} has a nested ${n.opType}`);
    if (options.int8Projection) nodes = int8Projection(nodes, initializers, initializerNames);
    const used = new Set(nodes.flatMap((n) => n.inputs));
    let kept = initializers.filter((_, i) => used.has(initializerNames[i] as string));
    const nameOf = (f: WireField) => strings(decodeMessage(f.data), VALUE_INFO.name)[0] ?? '';
    let valueInfo = body.filter((f) => f.no === GRAPH.output || f.no === GRAPH.valueInfo);
    if (options.signedSteps?.includes(step)) {
      const dense = new Map<string, WireField>();
      for (const [i, f] of initializers.entries()) if (f.no === GRAPH.initializer) dense.set(initializerNames[i] as string, f);
      const outputs = new Set(body.filter((f) => f.no === GRAPH.output).map(nameOf));
      const signed = signInt8Weights(nodes, dense, outputs, fail);
      kept = kept.map((f) => (f.no === GRAPH.initializer ? (signed.initializers.get(initializerName(f)) ?? f) : f));
      // The gathered embedding is int8 now; onnxruntime infers its type when nothing declares it.
      valueInfo = valueInfo.filter((f) => f.no === GRAPH.output || !signed.int8Values.has(nameOf(f)));
    }
    let graphOut: WireField[] = [
      ...nodes.map((n) => messageField(GRAPH.node, n.fields)),
      stringField(GRAPH.name, `moonshine_decoder_${branchName}`),
      ...kept,
      ...inputs.filter((_, i) => used.has(inputNames[i] as string)),
      ...valueInfo,
    ];
    if (options.batchOfOne) {
      graphOut = fixInputSizes(graphOut, ONE_SEQUENCE);
      const ids = graphOut.find((f) => f.no === GRAPH.input && nameOf(f) === 'input_ids');
      const dims = ids ? valueInfoDims(decodeMessage(ids.data)) : [];
      if (dims.join() !== '1,1') fail(`input_ids is [${dims}] after fixing the batch and token sizes, not [1,1]`);
    }
    return encodeMessage(modelFields.map((f) => (f.no === MODEL.graph ? messageField(MODEL.graph, graphOut) : f)));
  };
  return { first: build('else_branch', 'first'), later: build('then_branch', 'later') };
}

/** `logits = MatMul(hidden, DequantizeLinear(Wq, scale, zero))` → int8 MatMul of a quantized `hidden`. */
function int8Projection(nodes: OnnxNode[], initializers: readonly WireField[], initializerNames: readonly string[]): OnnxNode[] {
  const matmul = nodes.find((n) => n.opType === 'MatMul' && n.outputs[0] === 'logits') ?? fail('no MatMul producing logits');
  const [hidden, weights] = matmul.inputs as [string, string];
  const dequantize =
    nodes.find((n) => n.outputs[0] === weights && n.opType === 'DequantizeLinear') ?? fail('the projection is not quantized');
  const [quantized, scale, zeroPoint] = dequantize.inputs as [string, string, string];
  // Per-tensor scale and zero point: scalars (a per-column scale would need another Mul shape).
  for (const name of [scale, zeroPoint]) {
    const at = initializerNames.indexOf(name);
    if (at < 0) fail(`${name} is not an initializer`);
    if (decodeMessage((initializers[at] as WireField).data).some((f) => f.no === TENSOR.dims)) fail(`${name} is not a scalar`);
  }
  const p = 'earshot/proj_out';
  const replacement = [
    makeNode(`${p}/DynamicQuantizeLinear`, 'DynamicQuantizeLinear', [hidden], [`${p}/x_q`, `${p}/x_scale`, `${p}/x_zero`]),
    makeNode(`${p}/MatMulInteger`, 'MatMulInteger', [`${p}/x_q`, quantized, `${p}/x_zero`, zeroPoint], [`${p}/acc`]),
    makeNode(`${p}/Cast`, 'Cast', [`${p}/acc`], [`${p}/acc_f`], [intAttribute('to', ONNX.dataType.float)]),
    makeNode(`${p}/Scale`, 'Mul', [`${p}/x_scale`, scale], [`${p}/scale`]),
    makeNode(`${p}/Mul`, 'Mul', [`${p}/acc_f`, `${p}/scale`], ['logits']),
  ];
  const stillUsed = nodes.some((n) => n !== matmul && n.inputs.includes(weights));
  return nodes.flatMap((n) => (n === matmul ? replacement : n === dequantize && !stillUsed ? [] : [n]));
}
