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
