import { crc32c } from './crc32c.js';

/**
 * Kafka Produce request v3 (the lowest version Kafka 4 still accepts, and the first with
 * record batches v2), encoded straight into one buffer: sizes first, then one allocation and
 * in-place writes, the CRC over the batch as written. kafkajs builds every record through
 * several growing encoders and object spreads; that per-record cost was about half of an
 * ingest process's CPU (docs/benchmarks.md, "ingest optimizations").
 *
 * Wire layout (https://kafka.apache.org/protocol, "Produce API", "Record Batch"):
 *   size int32 | api_key 0 int16 | api_version 3 int16 | correlation_id int32 | client_id string
 *   | transactional_id null | acks int16 | timeout_ms int32 | [topic string | [partition int32 | records bytes]]
 * a record batch (magic 2, no compression, no producer id):
 *   base_offset 0 int64 | batch_length int32 | leader_epoch -1 int32 | magic 2 int8 | crc uint32
 *   | attributes int16 | last_offset_delta int32 | first_timestamp int64 | max_timestamp int64
 *   | producer_id -1 int64 | producer_epoch -1 int16 | base_sequence -1 int32 | [record]
 * a record: length varint | attributes int8 | timestamp_delta varlong | offset_delta varint
 *   | key varint-length bytes | value varint-length bytes | headers varint count (0)
 */
export const PRODUCE_API_KEY = 0;
export const PRODUCE_API_VERSION = 3;

export interface EncodedRecord {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly timestampMs: number;
}

export interface PartitionRecords {
  readonly partition: number;
  readonly records: readonly EncodedRecord[];
}

export interface ProduceRequest {
  readonly correlationId: number;
  /** UTF-8 bytes of the client id and the topic, encoded once by the caller. */
  readonly clientId: Buffer;
  readonly topic: Buffer;
  readonly acks: number;
  readonly timeoutMs: number;
  readonly partitions: readonly PartitionRecords[];
}

/** Bytes of a record batch before its records. */
const BATCH_HEADER = 61;
/** Offset of the first byte the CRC covers (attributes), from the batch start. */
const CRC_FROM = 21;

export function encodeProduceRequest(request: ProduceRequest): Buffer {
  const { partitions } = request;
  // Pass 1: sizes.
  let size = 4 + 2 + 2 + 4 + 2 + request.clientId.length + 2 + 2 + 4 + 4 + 2 + request.topic.length + 4;
  const batchSizes: number[] = new Array(partitions.length);
  const bases: number[] = new Array(partitions.length);
  // Each record's body size, kept from pass 1 for its length prefix in pass 2.
  const bodySizes: number[][] = new Array(partitions.length);
  for (let p = 0; p < partitions.length; p++) {
    const records = (partitions[p] as PartitionRecords).records;
    if (records.length === 0) throw new RangeError('a partition needs at least one record');
    let base = Number.POSITIVE_INFINITY;
    for (const r of records) if (r.timestampMs < base) base = r.timestampMs;
    let batch = BATCH_HEADER;
    const bodies: number[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const body = recordBodySize(records[i] as EncodedRecord, i, base);
      bodies[i] = body;
      batch += varintSize(body * 2) + body;
    }
    bodySizes[p] = bodies;
    batchSizes[p] = batch;
    bases[p] = base;
    size += 4 + 4 + batch;
  }

  // Pass 2: writes.
  const out = Buffer.allocUnsafe(size);
  let o = out.writeInt32BE(size - 4, 0);
  o = out.writeInt16BE(PRODUCE_API_KEY, o);
  o = out.writeInt16BE(PRODUCE_API_VERSION, o);
  o = out.writeInt32BE(request.correlationId, o);
  o = out.writeInt16BE(request.clientId.length, o);
  o += request.clientId.copy(out, o);
  o = out.writeInt16BE(-1, o); // transactional_id: null
  o = out.writeInt16BE(request.acks, o);
  o = out.writeInt32BE(request.timeoutMs, o);
  o = out.writeInt32BE(1, o); // one topic per request
  o = out.writeInt16BE(request.topic.length, o);
  o += request.topic.copy(out, o);
  o = out.writeInt32BE(partitions.length, o);
  for (let p = 0; p < partitions.length; p++) {
    const { partition, records } = partitions[p] as PartitionRecords;
    const batchSize = batchSizes[p] as number;
    const base = bases[p] as number;
    o = out.writeInt32BE(partition, o);
    o = out.writeInt32BE(batchSize, o);
    const start = o;
    o = writeInt64(out, 0, o); // base_offset
    o = out.writeInt32BE(batchSize - 12, o); // batch_length: after base_offset and itself
    o = out.writeInt32BE(-1, o); // partition_leader_epoch
    o = out.writeInt8(2, o); // magic
    const crcAt = o;
    o += 4;
    o = out.writeInt16BE(0, o); // attributes: no compression, create time, not transactional
    o = out.writeInt32BE(records.length - 1, o); // last_offset_delta
    let max = base;
    for (const r of records) if (r.timestampMs > max) max = r.timestampMs;
    o = writeInt64(out, base, o);
    o = writeInt64(out, max, o);
    o = writeInt64(out, -1, o); // producer_id: none
    o = out.writeInt16BE(-1, o); // producer_epoch
    o = out.writeInt32BE(-1, o); // base_sequence
    o = out.writeInt32BE(records.length, o);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as EncodedRecord;
      o = writeVarint(out, ((bodySizes[p] as number[])[i] as number) * 2, o);
      out[o++] = 0; // record attributes
      o = writeVarint(out, (r.timestampMs - base) * 2, o);
      o = writeVarint(out, i * 2, o);
      o = writeVarint(out, r.key.length * 2, o);
      o += r.key.copy(out, o);
      o = writeVarint(out, r.value.length * 2, o);
      o += r.value.copy(out, o);
      out[o++] = 0; // no headers
    }
    if (o - start !== batchSize) throw new Error(`record batch size mismatch: wrote ${o - start}, computed ${batchSize}`);
    out.writeUInt32BE(crc32c(out, start + CRC_FROM, o), crcAt);
  }
  if (o !== size) throw new Error(`produce request size mismatch: wrote ${o}, computed ${size}`);
  return out;
}

export interface PartitionResponse {
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
  readonly baseOffset: bigint;
}

/** Decodes a Produce v3 response body (after the correlation id). */
export function decodeProduceResponse(body: Buffer): PartitionResponse[] {
  const result: PartitionResponse[] = [];
  let o = 0;
  const topics = body.readInt32BE(o);
  o += 4;
  for (let t = 0; t < topics; t++) {
    const nameLength = body.readInt16BE(o);
    o += 2;
    const topic = body.toString('utf8', o, o + nameLength);
    o += nameLength;
    const count = body.readInt32BE(o);
    o += 4;
    for (let p = 0; p < count; p++) {
      const partition = body.readInt32BE(o);
      const errorCode = body.readInt16BE(o + 4);
      const baseOffset = body.readBigInt64BE(o + 6);
      o += 4 + 2 + 8 + 8; // log_append_time ignored
      result.push({ topic, partition, errorCode, baseOffset });
    }
  }
  return result;
}

/** Size of a record after its length varint. Zigzag of a non-negative n is 2n. */
function recordBodySize(r: EncodedRecord, offsetDelta: number, base: number): number {
  return (
    1 +
    varintSize((r.timestampMs - base) * 2) +
    varintSize(offsetDelta * 2) +
    varintSize(r.key.length * 2) +
    r.key.length +
    varintSize(r.value.length * 2) +
    r.value.length +
    1
  );
}

/** Bytes of an unsigned varint (already zigzagged), exact up to 2^53. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(out: Buffer, v: number, o: number): number {
  while (v >= 128) {
    out[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[o++] = v;
  return o;
}

/** A safe integer as a big-endian int64 (no BigInt on the hot path). */
function writeInt64(out: Buffer, v: number, o: number): number {
  const high = Math.floor(v / 0x100000000);
  out.writeInt32BE(high, o);
  out.writeUInt32BE(v - high * 0x100000000, o + 4);
  return o + 8;
}
