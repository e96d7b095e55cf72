import { readFileSync } from 'node:fs';
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
  varintField,
  varints,
  type WireField,
} from './protobuf-wire.js';

/**
 * Rewrites Moonshine's quantized encoder in memory at load, for CPU (profiled, docs/benchmarks.md
 * "Change 7: the encoder"), like decoder-graph.ts does the decoder:
 *
 * - `signedWeights`: the int8 layers (DynamicQuantizeLinear → MatMulInteger, fused by
 *   onnxruntime into one kernel) store their weights as uint8. Onnxruntime's CPU kernels multiply
 *   uint8 × int8 with the VNNI/AMX instructions, uint8 × uint8 on a slower path, so the weights
 *   and their zero points are shifted by 128 into int8 (w − 128, z − 128: the same products,
 *   exactly). On x86 CPUs without VNNI the uint8 × int8 kernel can saturate 16-bit sums, so
 *   the caller turns this on only where VNNI is present (`hasInt8DotProduct`). The decoder
 *   takes the same shift (`signInt8Weights`, decoder-graph.ts).
 * - `int8Convs` (measured, not the default): the named float Convs, whose int8 weights the
 *   export turns back into floats (Cast → Mul → Add), as DynamicQuantizeLinear → MatMulInteger
 *   over their input windows (onnxruntime's ConvInteger was slower than the float Conv here).
 *   Their input is quantized per utterance, which costs accuracy: conv2's input spans ±5 with
 *   a median of 0.015, conv3's reaches 90 with a median of 0.07 (docs/benchmarks.md).
 *
 * Every field not named here is carried over unchanged.
 */
const { model: MODEL, graph: GRAPH, tensor: TENSOR, dataType: DATA_TYPE } = ONNX;

export interface EncoderRewrite {
  readonly signedWeights?: boolean;
  /** `batch_size` fixed at 1 in the input's declared shape (one utterance per run; protobuf-wire.ts `fixInputSizes`). */
  readonly batchOfOne?: boolean;
  /** Names of the Conv nodes to run in int8. */
  readonly int8Convs?: readonly string[];
}

function fail(why: string): never {
  throw new Error(`encoder graph: ${why} (is this the pinned Moonshine encoder?)`);
}

/** A small initializer's values (scales, zero points), whichever field holds them. */
function tensorValues(fields: readonly WireField[]): { dataType: number; values: number[] } {
  const dataType = fields.find((f) => f.no === TENSOR.dataType)?.data[0] ?? fail('tensor without a data type');
  const raw = fields.find((f) => f.no === TENSOR.rawData)?.data;
  if (raw) {
    const bytes = new Uint8Array(raw); // aligned copy
    if (dataType === DATA_TYPE.float) return { dataType, values: [...new Float32Array(bytes.buffer)] };
    if (dataType === DATA_TYPE.uint8) return { dataType, values: [...bytes] };
    if (dataType === DATA_TYPE.int8) return { dataType, values: [...new Int8Array(bytes.buffer)] };
    return fail(`raw tensor of type ${dataType}`);
  }
  const values: number[] = [];
  if (dataType === DATA_TYPE.float) {
    for (const f of fields.filter((x) => x.no === TENSOR.floatData)) {
      const view = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
      for (let at = 0; at < f.data.length; at += 4) values.push(view.getFloat32(at, true));
    }
  } else {
    // uint8 / int8 are stored in int32_data: packed varints, or one varint per field.
    for (const f of fields.filter((x) => x.no === TENSOR.int32Data)) values.push(...varints(f.data));
  }
  return { dataType, values };
}

/** A TensorProto with `dims` and raw little-endian bytes. */
function tensor(name: string, dataType: number, dims: readonly number[], raw: Uint8Array): WireField {
  return messageField(GRAPH.initializer, [
    ...dims.map((d) => varintField(TENSOR.dims, d)),
    varintField(TENSOR.dataType, dataType),
    stringField(TENSOR.name, name),
    { no: TENSOR.rawData, wire: 2, data: raw },
  ]);
}

export function rewriteEncoder(model: Uint8Array, options: EncoderRewrite): Uint8Array {
  const modelFields = decodeMessage(model);
  const graph = decodeMessage((modelFields.find((f) => f.no === MODEL.graph) ?? fail('no graph')).data);
  let nodes = graph.filter((f) => f.no === GRAPH.node).map(parseNode);
  if (!nodes.some((n) => n.opType === 'MatMulInteger')) fail('no MatMulInteger');
  const initializers = new Map<string, WireField>();
  for (const f of graph) if (f.no === GRAPH.initializer) initializers.set(initializerName(f), f);
  const added: WireField[] = [];
  const valuesOf = (name: string) => tensorValues(decodeMessage((initializers.get(name) ?? fail(`${name} is not an initializer`)).data));

  const signed = options.signedWeights ? signInt8Weights(nodes, initializers, graphOutputNames(graph), fail) : undefined;

  if (options.int8Convs?.length) {
    const missing = options.int8Convs.filter((name) => !nodes.some((n) => n.opType === 'Conv' && n.name === name));
    if (missing.length > 0) fail(`no Conv ${missing.join(', ')}`);
    const producer = new Map<string, OnnxNode>();
    for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
    const rewritten: OnnxNode[] = [];
    for (const conv of nodes) {
      if (conv.opType !== 'Conv' || !options.int8Convs.includes(conv.name)) {
        rewritten.push(conv);
        continue;
      }
      const [x, w, bias] = conv.inputs as [string, string, string | undefined];
      // w = Add(Mul(Cast(w_int8), scale), offset): how the export stores a quantized conv weight.
      const add = producer.get(w);
      const mul = add?.opType === 'Add' ? producer.get(add.inputs.find((i) => producer.has(i)) ?? '') : undefined;
      const cast = mul?.opType === 'Mul' ? producer.get(mul.inputs.find((i) => producer.has(i)) ?? '') : undefined;
      const quantized = cast?.opType === 'Cast' ? cast.inputs[0] : undefined;
      if (!add || !mul || !quantized || !initializers.has(quantized)) fail(`${conv.name}: weight is not a dequantized int8 tensor`);
      const qFields = decodeMessage((initializers.get(quantized) as WireField).data);
      const dims = qFields.filter((f) => f.no === TENSOR.dims).map((f) => Number(varints(f.data)[0]));
      const raw = qFields.find((f) => f.no === TENSOR.rawData)?.data;
      if (qFields.find((f) => f.no === TENSOR.dataType)?.data[0] !== DATA_TYPE.int8 || !raw) fail(`${quantized} is not raw int8`);
      const attribute = (name: string) => attributeInts(conv, name);
      const [outC, inC, k] = dims as [number, number, number];
      const [stride = 1] = attribute('strides');
      if (dims.length !== 3 || attribute('kernel_shape')[0] !== k || attribute('pads').some((v) => v !== 0))
        fail(`${conv.name}: not a 1-D conv without padding`);
      if (attribute('dilations').some((v) => v !== 1) || attribute('group').some((v) => v !== 1)) fail(`${conv.name}: dilated or grouped`);
      const scaleName = mul.inputs.find((i) => i !== cast?.outputs[0]) as string;
      const offsetName = add.inputs.find((i) => i !== mul.outputs[0]) as string;
      const [scale] = valuesOf(scaleName).values;
      const [offset] = valuesOf(offsetName).values;
      if (scale === undefined || offset === undefined || !(scale > 0)) fail(`${conv.name}: no per-tensor scale`);
      // w = q·s + o = s·(q − z) with z = −o/s: an integer zero point, if the export made o so.
      const zero = -offset / scale;
      if (Math.abs(zero - Math.round(zero)) > 1e-3 || Math.abs(zero) > 127)
        fail(`${conv.name}: offset ${offset} is not an int8 zero point`);
      // The conv as a matrix product over time frames: row t of the input matrix is the k
      // windows x[:, t·stride + j] (j < k) side by side, and the weights [Cout, Cin, k] become
      // [k·Cin, Cout] in the same order.
      const p = `earshot${conv.name}`;
      const matrix = new Uint8Array(raw.length);
      for (let o = 0; o < outC; o++)
        for (let c = 0; c < inC; c++) for (let j = 0; j < k; j++) matrix[(j * inC + c) * outC + o] = raw[(o * inC + c) * k + j] as number;
      added.push(
        tensor(`${p}/w`, DATA_TYPE.int8, [k * inC, outC], matrix),
        tensor(`${p}/w_zero`, DATA_TYPE.int8, [], Uint8Array.of(Math.round(zero) & 0xff)),
      );
      added.push(int64Tensor(`${p}/time_axis`, [1]), int64Tensor(`${p}/stride`, [stride]));
      const out = conv.outputs[0] as string;
      const frames = Array.from({ length: k }, (_, j) => `${p}/frames_${j}`);
      rewritten.push(makeNode(`${p}/ToTimeMajor`, 'Transpose', [x], [`${p}/x_t`], [intsAttribute('perm', [0, 2, 1])]));
      for (let j = 0; j < k; j++) {
        // Window j of output frame t is input frame t·stride + j; ending k − 1 − j frames
        // before the end gives every slice the conv's output length.
        added.push(
          int64Tensor(`${p}/start_${j}`, [j]),
          int64Tensor(`${p}/end_${j}`, [j === k - 1 ? Number.MAX_SAFE_INTEGER : j - (k - 1)]),
        );
        rewritten.push(
          makeNode(
            `${p}/Slice_${j}`,
            'Slice',
            [`${p}/x_t`, `${p}/start_${j}`, `${p}/end_${j}`, `${p}/time_axis`, `${p}/stride`],
            [frames[j] as string],
          ),
        );
      }
      rewritten.push(
        makeNode(`${p}/Windows`, 'Concat', frames, [`${p}/windows`], [intAttribute('axis', 2)]),
        makeNode(`${p}/DynamicQuantizeLinear`, 'DynamicQuantizeLinear', [`${p}/windows`], [`${p}/x_q`, `${p}/x_scale`, `${p}/x_zero`]),
        makeNode(`${p}/Scale`, 'Mul', [`${p}/x_scale`, scaleName], [`${p}/scale`]),
        makeNode(`${p}/MatMulInteger`, 'MatMulInteger', [`${p}/x_q`, `${p}/w`, `${p}/x_zero`, `${p}/w_zero`], [`${p}/acc`]),
        makeNode(`${p}/Cast`, 'Cast', [`${p}/acc`], [`${p}/acc_f`], [intAttribute('to', DATA_TYPE.float)]),
        makeNode(`${p}/Mul`, 'Mul', [`${p}/acc_f`, `${p}/scale`], [`${p}/y_t`]),
      );
      let y = `${p}/y_t`;
      if (bias) {
        rewritten.push(makeNode(`${p}/Bias`, 'Add', [y, bias], [`${p}/y_t_biased`]));
        y = `${p}/y_t_biased`;
      }
      rewritten.push(makeNode(`${p}/ToChannelMajor`, 'Transpose', [y], [out], [intsAttribute('perm', [0, 2, 1])]));
    }
    nodes = pruneDeadNodes(rewritten, graph);
  }

  const used = new Set(nodes.flatMap((n) => n.inputs));
  const graphOut: WireField[] = [];
  let nodesWritten = false;
  for (const f of graph) {
    if (f.no === GRAPH.node) {
      if (!nodesWritten) graphOut.push(...nodes.map((n) => messageField(GRAPH.node, n.fields)));
      nodesWritten = true;
    } else if (f.no === GRAPH.initializer) {
      const name = initializerName(f);
      if (used.has(name)) graphOut.push(signed?.initializers.get(name) ?? f);
    } else if (f.no !== GRAPH.valueInfo || !signed?.int8Values.has(strings(decodeMessage(f.data), ONNX.valueInfo.name)[0] ?? '')) {
      graphOut.push(f);
    }
  }
  graphOut.push(...added);
  const final = options.batchOfOne ? fixInputSizes(graphOut, { batch_size: 1 }) : graphOut;
  return encodeMessage(modelFields.map((f) => (f.no === MODEL.graph ? messageField(MODEL.graph, final) : f)));
}

/**
 * The `signedWeights` shift, shared with the decoder (decoder-graph.ts): every initializer that
 * reaches a MatMulInteger's B side (weights or zero point) goes uint8 → int8 (u − 128), so
 * onnxruntime takes its uint8 × int8 kernels. Exact only where every reader of a shifted tensor
 * sees the shift cancel: MatMulInteger's B and B zero point, DequantizeLinear's x and zero point
 * ((u − 128) − (z − 128) = u − z), both shifted together, possibly through Transpose or a
 * Gather's data (they move bytes, not values: the decoder's tied embedding is gathered for the
 * input token and transposed for the output projection). Any other reader, or a pair of which
 * only one side could be shifted, is refused. Returns the replaced initializers by name, and the
 * node outputs that now carry int8 (their value_info, if any, would still say uint8).
 */
export function signInt8Weights(
  nodes: readonly OnnxNode[],
  initializers: ReadonlyMap<string, WireField>,
  graphOutputs: ReadonlySet<string>,
  refuse: (why: string) => never,
): { initializers: Map<string, WireField>; int8Values: Set<string> } {
  const producer = new Map<string, OnnxNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  // The initializer a value is a rearrangement of, if any.
  const source = (value: string | undefined): string | undefined => {
    for (let v = value; v !== undefined && v !== ''; ) {
      if (initializers.has(v)) return v;
      const p = producer.get(v);
      if (p?.opType !== 'Transpose' && p?.opType !== 'Gather') return undefined;
      v = p.inputs[0];
    }
    return undefined;
  };
  // (value, zero point) input positions whose shifts cancel.
  const pairs: Record<string, readonly [number, number]> = { MatMulInteger: [1, 3], DequantizeLinear: [0, 2] };
  const shifted = new Set<string>();
  for (const n of nodes.filter((x) => x.opType === 'MatMulInteger')) {
    const [weights, zeroPoint] = [source(n.inputs[1]), source(n.inputs[3])];
    if (weights && zeroPoint) shifted.add(weights).add(zeroPoint);
  }
  // Close over the readers: a shifted tensor's partner in a pair is shifted too.
  for (let grown = true; grown; ) {
    grown = false;
    for (const n of nodes) {
      for (const [at, input] of n.inputs.entries()) {
        const from = source(input);
        if (!from || !shifted.has(from)) continue;
        if ((n.opType === 'Transpose' || n.opType === 'Gather') && at === 0) continue; // its output is checked as a reader's input
        const pair = pairs[n.opType];
        if (!pair?.includes(at)) refuse(`${from} (shifted to int8) is read by ${n.opType} ${n.name}`);
        const partner = source(n.inputs[pair[0] === at ? pair[1] : pair[0]]);
        if (!partner) refuse(`${n.name}: ${from} is shifted but its partner is not an initializer`);
        if (!shifted.has(partner)) {
          shifted.add(partner);
          grown = true;
        }
      }
    }
  }
  for (const out of graphOutputs) if (shifted.has(source(out) ?? '')) refuse(`${out} (shifted to int8) is a graph output`);
  const replaced = new Map<string, WireField>();
  for (const name of shifted) {
    const fields = decodeMessage((initializers.get(name) as WireField).data);
    const dataType = fields.find((f) => f.no === TENSOR.dataType)?.data[0];
    if (dataType === DATA_TYPE.int8) continue;
    if (dataType !== DATA_TYPE.uint8) refuse(`${name} is neither uint8 nor int8`);
    const stored = fields.find((f) => f.no === TENSOR.rawData)?.data;
    const raw = stored ? new Uint8Array(stored) : Uint8Array.from(tensorValues(fields).values);
    // u − 128 as int8 has the bit pattern u XOR 0x80.
    for (let i = 0; i < raw.length; i++) raw[i] = (raw[i] as number) ^ 0x80;
    const dims = fields.filter((f) => f.no === TENSOR.dims).map((f) => Number(varints(f.data)[0]));
    replaced.set(name, tensor(name, DATA_TYPE.int8, dims, raw));
  }
  const int8Values = new Set(nodes.flatMap((n) => n.outputs).filter((o) => !initializers.has(o) && shifted.has(source(o) ?? '')));
  return { initializers: replaced, int8Values };
}

function graphOutputNames(graph: readonly WireField[]): Set<string> {
  return new Set(graph.filter((f) => f.no === GRAPH.output).flatMap((f) => strings(decodeMessage(f.data), ONNX.valueInfo.name)));
}

function int64Tensor(name: string, values: readonly number[]): WireField {
  const raw = new Uint8Array(8 * values.length);
  const view = new DataView(raw.buffer);
  for (const [i, v] of values.entries()) view.setBigInt64(8 * i, BigInt(v), true);
  return tensor(name, DATA_TYPE.int64, [values.length], raw);
}

function intsAttribute(name: string, values: readonly number[]): WireField {
  return messageField(ONNX.node.attribute, [
    stringField(ONNX.attribute.name, name),
    ...values.map((v) => varintField(ONNX.attribute.ints, v)),
    varintField(ONNX.attribute.type, ONNX.attributeType.ints),
  ]);
}

/** An INT or INTS attribute's values ([] when absent). */
function attributeInts(node: OnnxNode, name: string): number[] {
  for (const a of node.fields.filter((f) => f.no === ONNX.node.attribute)) {
    const fields = decodeMessage(a.data);
    if (strings(fields, ONNX.attribute.name)[0] !== name) continue;
    return fields.filter((f) => f.no === ONNX.attribute.i || f.no === ONNX.attribute.ints).flatMap((f) => varints(f.data));
  }
  return [];
}

/** Drops nodes whose outputs nobody reads (the float weights the rewrite no longer needs). */
function pruneDeadNodes(nodes: OnnxNode[], graph: readonly WireField[]): OnnxNode[] {
  const graphOutputs = graphOutputNames(graph);
  let live = nodes;
  for (;;) {
    const read = new Set([...live.flatMap((n) => n.inputs), ...graphOutputs]);
    const next = live.filter((n) => n.outputs.some((o) => read.has(o)));
    if (next.length === live.length) return live;
    live = next;
  }
}

/**
 * Whether onnxruntime's uint8 × int8 kernels are exact here: x86 with VNNI (AVX512-VNNI or
 * AVX-VNNI) multiplies and adds in 32 bits; plain AVX2 goes through 16-bit sums that can
 * saturate, which the uint8 × uint8 kernel avoids. Elsewhere (no /proc/cpuinfo, other
 * architectures) the shipped uint8 weights are kept.
 */
export function hasInt8DotProduct(arch: string = process.arch, cpuinfo = () => readFileSync('/proc/cpuinfo', 'utf8')): boolean {
  if (arch !== 'x64') return false;
  try {
    return /^flags\s*:.*\b(avx512_vnni|avx_vnni)\b/m.test(cpuinfo());
  } catch {
    return false;
  }
}
