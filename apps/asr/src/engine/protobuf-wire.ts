/**
 * Protocol Buffers at the wire level: a message is a list of (field number, wire type, bytes).
 * Enough to take an ONNX model apart and put it back together (decoder-graph.ts) without a
 * schema: fields we do not touch are carried over byte for byte, so nothing the model holds
 * is lost to a schema that does not know it.
 */
export interface WireField {
  readonly no: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (groups, 3 and 4, are not used by ONNX). */
  readonly wire: 0 | 1 | 2 | 5;
  /** Wire 2: the payload without its length; otherwise the value's bytes as they were. */
  readonly data: Uint8Array;
}

export function decodeMessage(buf: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new RangeError('protobuf: truncated varint');
      const byte = buf[pos++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new RangeError('protobuf: varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const tag = varint();
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    const from = pos;
    let data: Uint8Array;
    if (wire === 0) {
      varint();
      data = buf.subarray(from, pos);
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > buf.length) throw new RangeError('protobuf: truncated fixed-width field');
      data = buf.subarray(from, pos);
    } else if (wire === 2) {
      const length = varint();
      if (pos + length > buf.length) throw new RangeError(`protobuf: field ${no} runs past the end of its message`);
      data = buf.subarray(pos, pos + length);
      pos += length;
    } else {
      throw new RangeError(`protobuf: unsupported wire type ${wire} (field ${no})`);
    }
    if (no < 1) throw new RangeError('protobuf: field number 0');
    fields.push({ no, wire, data });
  }
  return fields;
}

function varintBytes(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

export function encodeMessage(fields: readonly WireField[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    parts.push(varintBytes(f.no * 8 + f.wire));
    if (f.wire === 2) parts.push(varintBytes(f.data.length));
    parts.push(f.data);
  }
  return Buffer.concat(parts);
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

export function str(field: WireField): string {
  return utf8.decode(field.data);
}

export function strings(fields: readonly WireField[], no: number): string[] {
  return fields.filter((f) => f.no === no).map(str);
}

export function stringField(no: number, value: string): WireField {
  return { no, wire: 2, data: utf8Encoder.encode(value) };
}

export function messageField(no: number, fields: readonly WireField[]): WireField {
  return { no, wire: 2, data: encodeMessage(fields) };
}

export function varintField(no: number, value: number): WireField {
  return { no, wire: 0, data: varintBytes(value) };
}

/**
 * ONNX at the wire level, shared by the in-memory model rewrites (decoder-graph.ts,
 * encoder-graph.ts). Field numbers are those of onnx.proto; a rewrite names only the fields it
 * changes and carries every other one over unchanged.
 */
export const ONNX = {
  model: { graph: 7 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5 },
  attribute: { name: 1, i: 3, g: 6, ints: 8, type: 20 },
  attributeType: { int: 2, ints: 7 },
  tensor: { dims: 1, dataType: 2, floatData: 4, int32Data: 5, name: 8, rawData: 9 },
  dataType: { float: 1, uint8: 2, int8: 3, int64: 7 },
  valueInfo: { name: 1, type: 2 },
  /** TypeProto → its tensor_type; TypeProto.Tensor → shape; TensorShapeProto → dim; Dimension → dim_value / dim_param. */
  type: { tensor: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dimension: { value: 1, param: 2 },
} as const;

export interface OnnxNode {
  readonly fields: WireField[];
  readonly name: string;
  readonly opType: string;
  readonly inputs: string[];
  readonly outputs: string[];
}

export function parseNode(field: WireField): OnnxNode {
  const fields = decodeMessage(field.data);
  return {
    fields,
    name: strings(fields, ONNX.node.name)[0] ?? '',
    opType: strings(fields, ONNX.node.opType)[0] ?? '',
    inputs: strings(fields, ONNX.node.input),
    outputs: strings(fields, ONNX.node.output),
  };
}

/** `attributes`: AttributeProto fields as they are, e.g. those of the node this one replaces. */
export function makeNode(name: string, opType: string, inputs: string[], outputs: string[], attributes: WireField[] = []): OnnxNode {
  const fields = [
    ...inputs.map((i) => stringField(ONNX.node.input, i)),
    ...outputs.map((o) => stringField(ONNX.node.output, o)),
    stringField(ONNX.node.name, name),
    stringField(ONNX.node.opType, opType),
    ...attributes,
  ];
  return { fields, name, opType, inputs, outputs };
}

export function intAttribute(name: string, value: number): WireField {
  return messageField(ONNX.node.attribute, [
    stringField(ONNX.attribute.name, name),
    varintField(ONNX.attribute.i, value),
    varintField(ONNX.attribute.type, ONNX.attributeType.int),
  ]);
}

/** The name of an initializer (a TensorProto, or a SparseTensorProto whose name is in its `values`). */
export function initializerName(field: WireField, sparse = false): string {
  const fields = decodeMessage(field.data);
  const tensor = sparse ? decodeMessage(fields.find((x) => x.no === 1)?.data ?? new Uint8Array()) : fields;
  return strings(tensor, ONNX.tensor.name)[0] ?? '';
}

/** A dimension of a declared shape: a size, or the name of a size known only at run time. */
export type Dim = number | string;

/** The declared shape of a ValueInfoProto's tensor (`[]` when it declares none). */
export function valueInfoDims(valueInfo: readonly WireField[]): Dim[] {
  const type = decodeMessage(valueInfo.find((f) => f.no === ONNX.valueInfo.type)?.data ?? new Uint8Array());
  const tensor = decodeMessage(type.find((f) => f.no === ONNX.type.tensor)?.data ?? new Uint8Array());
  const shape = tensor.find((f) => f.no === ONNX.tensorType.shape);
  if (!shape) return [];
  return decodeMessage(shape.data)
    .filter((f) => f.no === ONNX.shape.dim)
    .map((d) => {
      const dim = decodeMessage(d.data);
      const value = dim.find((f) => f.no === ONNX.dimension.value);
      if (value) return varints(value.data)[0] as number;
      const param = dim.find((f) => f.no === ONNX.dimension.param);
      return param ? str(param) : '';
    });
}

/**
 * The varints in `data` (a varint field's payload, or a packed repeated field), read as int32:
 * a negative int32 is stored sign-extended to 64 bits. Enough for dims and int32_data.
 */
export function varints(data: Uint8Array): number[] {
  const out: number[] = [];
  let value = 0n;
  let shift = 0n;
  for (const byte of data) {
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if (byte < 0x80) {
      out.push(Number(BigInt.asIntN(32, value)));
      value = 0n;
      shift = 0n;
    }
  }
  return out;
}

/**
 * A graph's fields with the named run-time sizes of its inputs fixed (`{ batch_size: 1 }`): an
 * input dimension declared as `dim_param` "batch_size" becomes `dim_value` 1. onnxruntime then
 * knows those sizes when it optimizes, and folds the shape arithmetic that depended on them
 * (Shape → Gather → Unsqueeze → Concat chains feeding every Reshape) into constants. The nodes
 * are the same, but onnxruntime may then fuse some kernels differently, so floats can differ in
 * their last bits (decoder-graph.ts); an input of another size is refused at run time.
 */
export function fixInputSizes(graph: readonly WireField[], sizes: Readonly<Record<string, number>>): WireField[] {
  return graph.map((f) => {
    if (f.no !== ONNX.graph.input) return f;
    const valueInfo = decodeMessage(f.data);
    const dims = valueInfoDims(valueInfo);
    if (!dims.some((d) => typeof d === 'string' && sizes[d] !== undefined)) return f;
    const fixed = dims.map((d) => (typeof d === 'string' && sizes[d] !== undefined ? sizes[d] : d));
    const type = decodeMessage(valueInfo.find((x) => x.no === ONNX.valueInfo.type)?.data ?? new Uint8Array());
    const shape = messageField(
      ONNX.tensorType.shape,
      fixed.map((d) =>
        messageField(ONNX.shape.dim, [typeof d === 'number' ? varintField(ONNX.dimension.value, d) : stringField(ONNX.dimension.param, d)]),
      ),
    );
    const retyped = type.map((t) =>
      t.no === ONNX.type.tensor
        ? messageField(ONNX.type.tensor, [...decodeMessage(t.data).filter((x) => x.no !== ONNX.tensorType.shape), shape])
        : t,
    );
    return messageField(
      ONNX.graph.input,
      valueInfo.map((x) => (x.no === ONNX.valueInfo.type ? messageField(ONNX.valueInfo.type, retyped) : x)),
    );
  });
}
