import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import t from 'tap';
import { crc32c } from '../../../apps/shared/src/adapters/kafka-producer/crc32c.js';
import { murmur2, partitionOf } from '../../../apps/shared/src/adapters/kafka-producer/murmur2.js';
import {
  decodeProduceResponse,
  type EncodedRecord,
  encodeProduceRequest,
} from '../../../apps/shared/src/adapters/kafka-producer/produce-request.js';
import { kafkajsPartition } from './kafkajs-partition.js';

// kafkajs's own CRC and record-batch decoder are an independent implementation to check ours against.
const require = createRequire(import.meta.url);
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
const KafkajsDecoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown;
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  lastOffsetDelta: number;
  records: { key: Buffer; value: Buffer; timestamp: string; offset: string }[];
}>;

t.test('crc32c: the standard check value, and the same as kafkajs on any length and offset', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'CRC-32C("123456789") = 0xE3069283');
  t.equal(crc32c(Buffer.alloc(0)), 0, 'empty input');
  const data = randomBytes(4096);
  for (const [start, end] of [
    [0, 1],
    [0, 7],
    [0, 8],
    [3, 20],
    [5, 4096],
    [0, 4096],
    [1000, 1013],
  ] as const) {
    t.equal(crc32c(data, start, end), kafkajsCrc32c(data.subarray(start, end)), `bytes ${start}..${end}`);
  }
});

t.test('partitions: murmur2 as the Java client, and the same partition as kafkajs for every key', async (t) => {
  // Known Java murmur2 values (org.apache.kafka.common.utils.Utils.murmur2), from Kafka's own UtilsTest.
  t.equal(murmur2(Buffer.from('21')), -973932308);
  t.equal(murmur2(Buffer.from('foobar')), -790332482);
  t.equal(murmur2(Buffer.from('a-little-bit-long-string')), -985981536);
  t.equal(murmur2(Buffer.from('a-little-bit-longer-string')), -1486304829);
  t.equal(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')), -58897971);
  t.equal(murmur2(Buffer.from([97, 98, 99])), 479470107);
  let checked = 0;
  for (const partitions of [1, 4, 12, 13]) {
    for (let i = 0; i < 500; i++) {
      const key = i % 5 === 0 ? `CA${randomBytes(16).toString('hex')}` : randomBytes(1 + (i % 37)).toString('base64');
      const expected = kafkajsPartition(key, partitions);
      if (partitionOf(Buffer.from(key, 'utf8'), partitions) !== expected)
        t.fail(`key ${key}, ${partitions} partitions: ours ${partitionOf(Buffer.from(key), partitions)}, kafkajs ${expected}`);
      checked++;
    }
  }
  t.equal(checked, 2000, 'all keys agree');
});

/** Splits an encoded request into its header fields and each partition's batch. */
function parseRequest(frame: Buffer) {
  let o = 0;
  const size = frame.readInt32BE(o);
  o += 4;
  const apiKey = frame.readInt16BE(o);
  const apiVersion = frame.readInt16BE(o + 2);
  const correlationId = frame.readInt32BE(o + 4);
  o += 8;
  const clientLength = frame.readInt16BE(o);
  const clientId = frame.toString('utf8', o + 2, o + 2 + clientLength);
  o += 2 + clientLength;
  const transactionalId = frame.readInt16BE(o);
  const acks = frame.readInt16BE(o + 2);
  const timeout = frame.readInt32BE(o + 4);
  const topics = frame.readInt32BE(o + 8);
  o += 12;
  const topicLength = frame.readInt16BE(o);
  const topic = frame.toString('utf8', o + 2, o + 2 + topicLength);
  o += 2 + topicLength;
  const count = frame.readInt32BE(o);
  o += 4;
  const partitions: { partition: number; batch: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const partition = frame.readInt32BE(o);
    const length = frame.readInt32BE(o + 4);
    partitions.push({ partition, batch: frame.subarray(o + 8, o + 8 + length) });
    o += 8 + length;
  }
  return { size, end: o, apiKey, apiVersion, correlationId, clientId, transactionalId, acks, timeout, topics, topic, partitions };
}

t.test('a produce request: header fields, and batches kafkajs decodes to the same records with a valid CRC', async (t) => {
  const at = 1_790_000_000_000;
  const p0: EncodedRecord[] = [
    { key: Buffer.from('CA1'), value: Buffer.from('first'), timestampMs: at + 20 },
    { key: Buffer.from('CA1'), value: randomBytes(20_000), timestampMs: at }, // earlier timestamp: the batch base is the minimum
    { key: Buffer.from('CA1'), value: Buffer.alloc(0), timestampMs: at + 300_000 },
  ];
  const p3: EncodedRecord[] = [{ key: Buffer.from('CAé'), value: randomBytes(129), timestampMs: at + 5 }];
  const frame = encodeProduceRequest({
    correlationId: 77,
    clientId: Buffer.from('earshot-test'),
    topic: Buffer.from('ns.earshot.call-events.v1'),
    acks: -1,
    timeoutMs: 30_000,
    partitions: [
      { partition: 0, records: p0 },
      { partition: 3, records: p3 },
    ],
  });
  const request = parseRequest(frame);
  t.equal(request.size, frame.length - 4, 'size prefix');
  t.equal(request.end, frame.length, 'nothing after the last batch');
  t.match(request, {
    apiKey: 0,
    apiVersion: 3,
    correlationId: 77,
    clientId: 'earshot-test',
    transactionalId: -1,
    acks: -1,
    timeout: 30_000,
    topics: 1,
  });
  t.equal(request.topic, 'ns.earshot.call-events.v1');
  t.same(
    request.partitions.map((p) => p.partition),
    [0, 3],
  );
  for (const [index, expected] of [p0, p3].entries()) {
    const batch = (request.partitions[index] as { batch: Buffer }).batch;
    t.equal(batch.readUInt32BE(17), kafkajsCrc32c(batch.subarray(21)), `partition ${index}: CRC over attributes..end`);
    t.equal(batch.readInt8(16), 2, 'magic 2');
    t.equal(batch.readInt32BE(8), batch.length - 12, 'batch length');
    const decoded = await decodeRecordBatch(new KafkajsDecoder(batch));
    const base = Math.min(...expected.map((r) => r.timestampMs));
    t.equal(Number(decoded.firstTimestamp), base, 'first timestamp = the minimum');
    t.equal(Number(decoded.maxTimestamp), Math.max(...expected.map((r) => r.timestampMs)), 'max timestamp');
    t.equal(decoded.lastOffsetDelta, expected.length - 1);
    t.equal(decoded.records.length, expected.length);
    for (const [i, record] of decoded.records.entries()) {
      const want = expected[i] as EncodedRecord;
      t.ok(record.key.equals(want.key), `record ${i} key`);
      t.ok((record.value ?? Buffer.alloc(0)).equals(want.value), `record ${i} value (${want.value.length} bytes)`);
      t.equal(Number(record.timestamp), want.timestampMs, `record ${i} timestamp`);
      t.equal(Number(record.offset), i, `record ${i} offset delta`);
    }
  }
});

t.test('a partition with no records is a programming error, not an empty batch', async (t) => {
  t.throws(
    () =>
      encodeProduceRequest({
        correlationId: 1,
        clientId: Buffer.from('c'),
        topic: Buffer.from('t'),
        acks: -1,
        timeoutMs: 1,
        partitions: [{ partition: 0, records: [] }],
      }),
    /at least one record/,
  );
});

t.test('produce response: every partition answer decoded; a truncated one throws', async (t) => {
  const topic = Buffer.from('ns.t');
  const body = Buffer.alloc(4 + 2 + topic.length + 4 + 2 * 22 + 4);
  let o = body.writeInt32BE(1, 0);
  o = body.writeInt16BE(topic.length, o);
  o += topic.copy(body, o);
  o = body.writeInt32BE(2, o);
  for (const [partition, code, offset] of [
    [0, 0, 41n],
    [5, 6, -1n],
  ] as const) {
    o = body.writeInt32BE(partition, o);
    o = body.writeInt16BE(code, o);
    o = body.writeBigInt64BE(offset, o);
    o = body.writeBigInt64BE(-1n, o);
  }
  body.writeInt32BE(0, o);
  t.same(decodeProduceResponse(body), [
    { topic: 'ns.t', partition: 0, errorCode: 0, baseOffset: 41n },
    { topic: 'ns.t', partition: 5, errorCode: 6, baseOffset: -1n },
  ]);
  t.throws(() => decodeProduceResponse(body.subarray(0, 20)), RangeError);
});
