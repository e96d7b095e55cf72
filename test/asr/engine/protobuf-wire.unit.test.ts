import t from 'tap';
import {
  decodeMessage,
  encodeMessage,
  fixInputSizes,
  messageField,
  ONNX,
  stringField,
  valueInfoDims,
  varintField,
} from '../../../apps/asr/src/engine/protobuf-wire.js';

t.test('fields survive a round trip: varints of every length, fixed widths, nested messages', async (t) => {
  const values = [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER];
  const fields = [
    ...values.map((v) => varintField(3, v)),
    stringField(1, 'logits'),
    stringField(2, ''),
    { no: 9, wire: 1 as const, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
    { no: 10, wire: 5 as const, data: Uint8Array.of(9, 8, 7, 6) },
    messageField(536_870_911, [stringField(1, 'inner')]), // the largest field number
  ];
  const bytes = encodeMessage(fields);
  const back = decodeMessage(bytes);
  t.same(
    back.map((f) => [f.no, f.wire, Buffer.from(f.data).toString('hex')]),
    fields.map((f) => [f.no, f.wire, Buffer.from(f.data).toString('hex')]),
  );
  t.same(Buffer.from(encodeMessage(back)), Buffer.from(bytes), 'encoding what was decoded gives the same bytes');
  t.equal(Buffer.from(decodeMessage((back.at(-1) as { data: Uint8Array }).data)[0]?.data ?? []).toString(), 'inner');
  // Known bytes: field 1 varint 150 is 08 96 01 (the protobuf documentation's example).
  t.same([...encodeMessage([varintField(1, 150)])], [0x08, 0x96, 0x01]);
});

t.test('malformed input is refused, saying why', async (t) => {
  t.throws(() => decodeMessage(Uint8Array.of(0x08)), /truncated varint/);
  t.throws(() => decodeMessage(Uint8Array.of(0x08, 0x80)), /truncated varint/);
  t.throws(() => decodeMessage(Uint8Array.of(0x08, ...Array(11).fill(0xff))), /longer than 10 bytes/);
  t.throws(() => decodeMessage(Uint8Array.of(0x0a, 0x05, 0x61)), /field 1 runs past the end/);
  t.throws(() => decodeMessage(Uint8Array.of(0x09, 1, 2, 3)), /truncated fixed-width/);
  t.throws(() => decodeMessage(Uint8Array.of(0x0b)), /unsupported wire type 3/);
  t.throws(() => decodeMessage(Uint8Array.of(0x00, 0x00)), /field number 0/);
});

t.test("fixInputSizes: named run-time sizes of a graph's inputs become fixed, everything else is kept", async (t) => {
  const dim = (d: number | string) =>
    messageField(ONNX.shape.dim, [typeof d === 'number' ? varintField(ONNX.dimension.value, d) : stringField(ONNX.dimension.param, d)]);
  const input = (name: string, dims: (number | string)[]) =>
    messageField(ONNX.graph.input, [
      stringField(ONNX.valueInfo.name, name),
      messageField(ONNX.valueInfo.type, [
        messageField(ONNX.type.tensor, [varintField(ONNX.tensorType.elemType, 1), messageField(ONNX.tensorType.shape, dims.map(dim))]),
      ]),
    ]);
  const other = stringField(ONNX.graph.name, 'g');
  const graph = [input('ids', ['batch_size', 'seq']), other, input('past', ['batch_size', 8, 'past_len', 36]), input('sr', [])];
  const fixed = fixInputSizes(graph, { batch_size: 1, seq: 1 });
  const dimsOf = (fields: typeof graph) => fields.filter((f) => f.no === ONNX.graph.input).map((f) => valueInfoDims(decodeMessage(f.data)));
  t.same(dimsOf(graph), [['batch_size', 'seq'], ['batch_size', 8, 'past_len', 36], []], 'declared as read');
  t.same(dimsOf(fixed), [[1, 1], [1, 8, 'past_len', 36], []], 'the named sizes fixed, other names and sizes kept');
  t.equal(fixed[1], other, 'fields that are not inputs are the same objects');
  t.equal(fixed[3], graph[3], 'an input without those names is left as it was');
  const elemType = (field: (typeof graph)[number] | undefined) => {
    const type = decodeMessage(
      decodeMessage(field?.data ?? new Uint8Array()).find((f) => f.no === ONNX.valueInfo.type)?.data ?? new Uint8Array(),
    );
    const tensor = decodeMessage(type.find((f) => f.no === ONNX.type.tensor)?.data ?? new Uint8Array());
    return tensor.find((f) => f.no === ONNX.tensorType.elemType)?.data[0];
  };
  t.equal(elemType(fixed[0]), 1, 'the element type is kept');
  t.same(dimsOf(fixInputSizes(graph, { batch_size: 300 })), [[300, 'seq'], [300, 8, 'past_len', 36], []], 'sizes of more than one byte');
});
