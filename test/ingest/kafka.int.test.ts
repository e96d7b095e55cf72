import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import t from 'tap';
import { startIngest } from '../../apps/ingest/main.js';
import type { CallEvent } from '../../apps/shared/src/events.js';
import type { LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { renamedTopic, TOPICS } from '../../apps/shared/src/topics.js';
import { createTestApp, testRuntime } from '../support/runtime.js';
import { randomSuffix, waitFor } from '../support/wait.js';
import { expectedAudio, range, TwilioStream, timestampOf } from './support.js';

/**
 * Real Kafka and schema registry (`earshot infra up`): a simulated two-track call lands on a
 * fresh call-events topic with every audio byte intact and in order, chunk timestamps as
 * Twilio sent them, and its lifecycle records in the same partition, in order: the partition
 * Kafka's default partitioner (murmur2 of the key, as the Java client) gives the Call SID, so
 * any other producer keyed by Call SID agrees (the adapter remembers each key's partition).
 */
t.test('a two-track call lands on Kafka intact, in order, in one partition', async (t) => {
  const runtime = await testRuntime({ kafka: true, env: { EARSHOT_INGEST_PORT: '0' } });
  t.teardown(() => runtime.cleanup());
  const topic = renamedTopic(TOPICS.callEvents, `earshot.call-events-test-${randomSuffix()}`);
  await runtime.eventLog.ensureTopics([topic]);
  const app = await createTestApp(runtime, 'ingest kafka tenant');
  const { token } = await runtime.tokens.issue(app.apiId);
  const server = await startIngest(runtime, { topic });
  t.teardown(() => server.stop());
  const url = `${server.url}/twilio-media/${token}`;

  // Call A: 5 s per track, interleaved, with a DTMF digit in the middle.
  const a = await TwilioStream.open(url);
  a.connected();
  a.start();
  for (const chunk of range(1, 250)) {
    a.frame('inbound', chunk);
    a.frame('outbound', chunk);
    if (chunk === 120) a.dtmf('#');
    if (chunk % 50 === 0) await a.flushed();
  }
  a.stop();
  // Call B: Twilio restarts its stream; the older one ends as replaced, before the new one starts.
  const b1 = await TwilioStream.open(url);
  b1.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 7)) b1.frame('inbound', chunk);
  await b1.flushed();
  const b2 = await TwilioStream.open(url, { callSid: b1.callSid });
  b2.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) b2.frame('inbound', chunk);
  b2.stop();

  const records: LogRecord<CallEvent>[] = [];
  const consumer = runtime.eventLog.createConsumer({ groupId: `ingest-int-${randomUUID()}`, topics: [topic], fromBeginning: true });
  t.teardown(() => consumer.stop());
  await consumer.run(async (batch) => {
    records.push(...(batch.records as LogRecord<CallEvent>[]));
  });
  const ended = (streamSid: string) => records.some((r) => r.value.type === 'StreamEnded' && r.value.data.streamSid === streamSid);
  await waitFor('both calls ended on Kafka', () => ended(a.streamSid) && ended(b2.streamSid), 60_000);

  const ofA = records.filter((r) => r.key === a.callSid).sort((x, y) => x.offset - y.offset);
  t.equal(new Set(ofA.map((r) => r.partition)).size, 1, 'one partition per call');
  t.ok(
    ofA.every((r) => r.value.callSid === a.callSid && r.value.tenantId === app.apiId),
    'records carry the Call SID and the tenant',
  );
  t.equal(ofA[0]?.value.type, 'StreamStarted', 'StreamStarted first');
  t.equal(ofA.at(-1)?.value.type, 'StreamEnded', 'StreamEnded last');
  t.match(ofA.at(-1)?.value.data, { reason: 'stopped', framesReceived: 500, framesDropped: 0 });
  const dtmf = ofA.findIndex((r) => r.value.type === 'DtmfReceived');
  t.ok(dtmf > 0, 'the DTMF digit is there');
  for (const track of ['inbound', 'outbound'] as const) {
    const batches = ofA.flatMap((r) => (r.value.type === 'AudioChunkReceived' && r.value.data.track === track ? [r.value.data] : []));
    t.equal(batches.length, 50, `${track}: fifty 100 ms batches`);
    t.ok(
      Buffer.concat(batches.map((b) => b.payload)).equals(expectedAudio(track, range(1, 250))),
      `${track}: every audio byte intact and in order`,
    );
    t.same(
      batches.map((b) => [b.firstChunk, b.lastChunk, b.timestampMs, b.durationMs]),
      range(0, 49).map((i) => [i * 5 + 1, i * 5 + 5, timestampOf(track, i * 5 + 1), 100]),
      `${track}: chunk numbers and Twilio timestamps kept`,
    );
  }
  const dtmfAfter = ofA.slice(0, dtmf).filter((r) => r.value.type === 'AudioChunkReceived' && r.value.data.track === 'inbound');
  t.ok(dtmfAfter.length >= 20 && dtmfAfter.length <= 25, 'the DTMF digit sits where it happened in the audio');

  const ofB = records.filter((r) => r.key === b1.callSid).sort((x, y) => x.offset - y.offset);
  t.equal(new Set(ofB.map((r) => r.partition)).size, 1);
  const { partitions } = await runtime.eventLog.describeTopic(topic.name);
  const murmur2 = kafkajs.Partitioners.DefaultPartitioner();
  const partitionMetadata = range(0, partitions - 1).map((partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));
  for (const [name, call] of [
    ['A', ofA],
    ['B', ofB],
  ] as const) {
    const key = call[0]?.key as string;
    t.equal(
      call[0]?.partition,
      murmur2({ topic: topic.name, partitionMetadata, message: { key, value: null } }),
      `call ${name}: murmur2's partition`,
    );
  }
  t.same(
    ofB.map((r) => `${r.value.type}:${'streamSid' in r.value.data ? r.value.data.streamSid : ''}`),
    [
      `StreamStarted:${b1.streamSid}`,
      `AudioChunkReceived:${b1.streamSid}`,
      `AudioChunkReceived:${b1.streamSid}`,
      `StreamEnded:${b1.streamSid}`,
      `StreamStarted:${b2.streamSid}`,
      `AudioChunkReceived:${b2.streamSid}`,
      `StreamEnded:${b2.streamSid}`,
    ],
    'a restarted stream: the older ends as replaced before the newer starts',
  );
  t.match(ofB[3]?.value.data, { reason: 'replaced', framesReceived: 7 });
  a.close();
  b1.close();
  b2.close();
});
