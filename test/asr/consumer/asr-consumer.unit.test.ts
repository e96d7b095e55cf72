import t from 'tap';
import { startAsr } from '../../../apps/asr/src/consumer/asr-consumer.js';
import type { CallEventPayload } from '../../../apps/shared/src/events.js';
import { createRuntime } from '../../../apps/shared/src/runtime.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import { testRuntime } from '../../support/runtime.js';
import { waitFor } from '../../support/wait.js';
import { audioChunk, callEventMaker, dtmf, startCommand, stopCommand, streamEnded, tone } from '../support/call-events.js';
import { fakeEngine } from '../support/fake-engine.js';
import { collectAsrOutputs } from '../support/outputs.js';

// The consumer over the embedded log with the fake engine (the real one runs in test/e2e/).
const A = 'CA000000000000000000000000000000aa';
const B = 'CA000000000000000000000000000000bb';

t.test('a call finishing its last words does not hold up the other calls of its partition', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_TOPIC_PARTITIONS: '1' } });
  t.teardown(() => runtime.cleanup());
  const engine = fakeEngine();
  // Call A's stream is created first; its flush (stop-streaming) takes until we release it.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const create = engine.createStream.bind(engine);
  let created = 0;
  engine.createStream = (options) => {
    const stream = create(options);
    if (created++ === 0) {
      const flush = stream.flush.bind(stream);
      stream.flush = async () => {
        await gate;
        return flush();
      };
    }
    return stream;
  };
  const asr = await startAsr(runtime, engine, { groupId: 'asr-test' });
  t.teardown(() => asr.stop());
  const { utterances, sessions } = await collectAsrOutputs(t, runtime);

  const { record } = callEventMaker('e');
  const event = (callSid: string, payload: CallEventPayload) => record(callSid, Date.now(), payload);
  const audio = (callSid: string, ms: number, byte: number) =>
    event(callSid, audioChunk(ms, tone(byte), { streamSid: `MZ${callSid.slice(-2)}` }));
  const start = (callSid: string) => event(callSid, startCommand({ requestId: `start-${callSid}` }));

  // A: start, speech still going on, stop (its flush now hangs).
  await runtime.eventLog.produce(TOPICS.callEvents, [
    start(A),
    audio(A, 0, 0x10),
    audio(A, 100, 0x10),
    event(A, stopCommand('stop-A')),
    // The socket closes: no audio can follow the stop, so it completes without waiting.
    event(A, streamEnded(`MZ${A.slice(-2)}`, 'closed_without_stop')),
  ]);
  // B, after A's stop on the same partition: a whole utterance.
  const b = [start(B)];
  for (let ms = 0; ms < 1000; ms += 100) b.push(audio(B, ms, ms < 400 ? 0x10 : 0xff));
  await runtime.eventLog.produce(TOPICS.callEvents, b);

  await waitFor("B's utterance while A is still finishing", () => utterances.some((u) => u.callSid === B));
  t.notOk(
    sessions.some((s) => s.callSid === A && s.type === 'TranscriptionSessionClosed'),
    "A's session is not closed yet",
  );
  release();
  await waitFor("A's last words and its close", () => sessions.some((s) => s.callSid === A && s.type === 'TranscriptionSessionClosed'));
  t.ok(
    utterances.some((u) => u.callSid === A),
    "A's last words were not lost",
  );
});

t.test('a stop whose stream went silent (ingest died, no end event) completes after the grace period', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_TOPIC_PARTITIONS: '1', EARSHOT_ASR_STOP_GRACE_MS: '300' } });
  t.teardown(() => runtime.cleanup());
  const asr = await startAsr(runtime, fakeEngine({ 16: 'hello' }), { groupId: 'asr-test' });
  t.teardown(() => asr.stop());
  const { utterances, sessions } = await collectAsrOutputs(t, runtime);
  const { record } = callEventMaker('g');
  const event = (payload: CallEventPayload) => record(A, Date.now(), payload);
  const chunk = (ms: number, byte: number) => audioChunk(ms, tone(byte), { streamSid: 'MZaa' });
  const startedAt = Date.now();
  await runtime.eventLog.produce(TOPICS.callEvents, [
    event(startCommand({ requestId: 'start-g' })),
    event(chunk(0, 16)),
    event(chunk(100, 16)),
    event(stopCommand('stop-g')),
  ]);
  await waitFor('the session closed by the grace timer', () => sessions.some((s) => s.type === 'TranscriptionSessionClosed'));
  t.ok(Date.now() - startedAt >= 300, 'not before the grace period');
  t.match(
    sessions.find((s) => s.type === 'TranscriptionSessionClosed'),
    { data: { requestId: 'stop-g', reason: 'stop_requested' } },
  );
  t.same(
    utterances.map((u) => u.text),
    ['hello'],
    'the words in progress are flushed',
  );
});

t.test('a session whose stream is gone closes once its partition has moved on; one waiting for its stream does not', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_TOPIC_PARTITIONS: '1', EARSHOT_ASR_SESSION_IDLE_MS: '5000' } });
  t.teardown(() => runtime.cleanup());
  const asr = await startAsr(runtime, fakeEngine({ 16: 'cut off' }), { groupId: 'asr-test' });
  t.teardown(() => asr.stop());
  const { utterances, sessions } = await collectAsrOutputs(t, runtime);
  // Event times of our own: the partition's clock is what counts, not the wall clock.
  const at = 1_800_000_000_000;
  const { record: event } = callEventMaker('i');
  const chunk = (callSid: string, ms: number, byte: number, occurredAtMs: number) =>
    event(callSid, occurredAtMs, audioChunk(ms, tone(byte)));
  const C = 'CA000000000000000000000000000000cc';
  const D = 'CA000000000000000000000000000000dd';
  const closedOf = (callSid: string) => sessions.find((s) => s.callSid === callSid && s.type === 'TranscriptionSessionClosed');
  // A: its ingest node dies mid-word (no StreamEnded, no stop). B: started, its stream not connected yet.
  await runtime.eventLog.produce(TOPICS.callEvents, [
    event(A, at, startCommand({ requestId: 'start-a' })),
    chunk(A, 0, 16, at + 100),
    chunk(A, 100, 16, at + 200),
    event(B, at + 200, startCommand({ requestId: 'start-b' })),
  ]);
  // Another call keeps the partition going for 4 s of event time: not yet long enough.
  await runtime.eventLog.produce(TOPICS.callEvents, [event(C, at + 4200, dtmf('MZc', '1'))]);
  await new Promise((r) => setTimeout(r, 2500)); // two timer rounds
  t.notOk(closedOf(A), 'not closed before the idle time has passed on the partition');
  // 6 s of event time later: A is abandoned, its words finished; B still waits for its stream.
  await runtime.eventLog.produce(TOPICS.callEvents, [event(D, at + 6200, dtmf('MZd', '2'))]);
  await waitFor("A's session closed as abandoned", () => closedOf(A) !== undefined);
  t.match(closedOf(A), { data: { requestId: null, reason: 'stream_ended' } });
  t.same(
    utterances.filter((u) => u.callSid === A).map((u) => u.text),
    ['cut off'],
    'the words cut off by the dead node are delivered',
  );
  await new Promise((r) => setTimeout(r, 1500));
  t.notOk(closedOf(B), 'a start whose stream has not connected is kept');
  const metrics = await runtime.metrics.metrics();
  t.match(metrics, /earshot_asr_sessions_abandoned_total\{app="test"\} 1\b/);
});

t.test('a session restored by a new owner is abandoned too when its call never sends again', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_TOPIC_PARTITIONS: '1', EARSHOT_ASR_SESSION_IDLE_MS: '5000' } });
  t.teardown(() => runtime.cleanup());
  const { sessions } = await collectAsrOutputs(t, runtime);
  const at = 1_800_000_000_000;
  const { record: event } = callEventMaker('r');
  const first = await startAsr(runtime, fakeEngine(), { groupId: 'asr-restore' });
  await runtime.eventLog.produce(TOPICS.callEvents, [
    event(A, at, startCommand({ requestId: 'start-a' })),
    event(A, at + 100, audioChunk(0, tone(0xff))),
  ]);
  await waitFor("A's session opened", () => sessions.some((s) => s.callSid === A && s.type === 'TranscriptionSessionOpened'));
  await new Promise((r) => setTimeout(r, 1200)); // a commit past the start
  await first.stop(); // the owner goes away; A's call is never heard from again
  // The new owner: another process in production; here a runtime of its own on the same log.
  const other = await createRuntime(runtime.config, { logger: runtime.logger, eventLog: runtime.eventLog, name: 'second-owner' });
  const second = await startAsr(other, fakeEngine(), { groupId: 'asr-restore' });
  t.teardown(() => second.stop());
  // Other calls move the partition's clock 6 s past A's opening.
  await runtime.eventLog.produce(TOPICS.callEvents, [event(B, at + 6500, dtmf('MZb', '3'))]);
  await waitFor('the restored session of A closed as abandoned', () =>
    sessions.some((s) => s.callSid === A && s.type === 'TranscriptionSessionClosed'),
  );
  t.match(
    sessions.find((s) => s.callSid === A && s.type === 'TranscriptionSessionClosed'),
    { data: { requestId: null, reason: 'stream_ended' } },
  );
});
