import t from 'tap';
import { CallTranscriber, type Emitter, type NotTranscribedReason } from '../../../apps/asr/src/consumer/call-transcriber.js';
import { openSessionsAt } from '../../../apps/asr/src/consumer/restore-sessions.js';
import { DEFAULT_RULES } from '../../../apps/asr/src/domain/redaction.js';
import type { CallEventPayload, SessionEvent, TranscriptionStartRequested, UtteranceRecognized } from '../../../apps/shared/src/events.js';
import { startRequest } from '../../support/fixtures.js';
import { audioChunk, callEventMaker, startCommand, stopCommand, streamEnded, streamStarted, tone } from '../support/call-events.js';
import { fakeEngine } from '../support/fake-engine.js';

// Given/when/then over one call: events in, utterance and session events out.
const CALL = 'CA0123456789abcdef0123456789abcdef';

function harness(words: Record<number, string> = { 16: 'hello there', 32: 'my card is 4111 1111 1111 1111' }) {
  const utterances: UtteranceRecognized[] = [];
  const sessions: SessionEvent[] = [];
  const errors: unknown[] = [];
  const notTranscribed: NotTranscribedReason[] = [];
  const emit: Emitter = {
    utterance: async (e) => {
      utterances.push(e);
    },
    session: async (e) => {
      sessions.push(e);
    },
  };
  const engine = fakeEngine(words);
  const clock = { ms: 1000 };
  const transcriber = new CallTranscriber(CALL, 'app_a', 3, {
    engine,
    emit,
    redactionRules: () => DEFAULT_RULES,
    now: () => clock.ms,
    onError: (e) => errors.push(e),
    notTranscribed: (reason) => notTranscribed.push(reason),
  });
  let offset = 0;
  const { event } = callEventMaker('e');
  // When each event was created (occurredAtMs): by default the latest time given so far, so
  // events keep their log order; a test passes an earlier time to make records cross.
  let latestAt = 0;
  const send = async (payload: CallEventPayload, at?: number) => {
    const when = at ?? latestAt;
    latestAt = Math.max(latestAt, when);
    await transcriber.handle(event(CALL, when, payload), offset++);
  };
  const start = (over: Partial<TranscriptionStartRequested> = {}, at?: number) =>
    send(startCommand({ customerId: 'cust-1', customerStreamId: 'stream-c', agentStreamId: 'stream-a', ...over }), at);
  /** 100 ms of speech (byte) or silence (0xff) on a track at media time ms. */
  const audio = (track: 'inbound' | 'outbound', ms: number, byte: number, streamSid = 'MZ1', at?: number) =>
    send(audioChunk(ms, tone(byte), { track, streamSid }), at);
  /** Speech from..to ms then silence until `until` on one track. */
  const speak = async (track: 'inbound' | 'outbound', from: number, to: number, until: number, byte = 0x10) => {
    for (let ms = from; ms < until; ms += 100) await audio(track, ms, ms < to ? byte : 0xff);
  };
  /** The stop command alone: with a live stream it waits for the audio received before it. */
  const stopOnly = (requestId = 'req-stop', at = 5000) => send(stopCommand(requestId), at);
  /** A stop as it usually goes: the stream goes on, and the first chunk received after it completes it. */
  const stop = async (requestId = 'req-stop', at = 5000) => {
    await stopOnly(requestId, at);
    await audio('inbound', 60_000, 0xff, 'MZ1', at + 100);
  };
  return {
    transcriber,
    utterances,
    sessions,
    errors,
    notTranscribed,
    engine,
    clock,
    send,
    start,
    audio,
    speak,
    stop,
    stopCommand: stopOnly,
    offset: () => offset,
  };
}

t.test('audio before start-streaming is never transcribed', async (t) => {
  const h = harness();
  await h.speak('inbound', 0, 1000, 2000); // IVR, queue music
  await h.transcriber.drain();
  t.equal(h.utterances.length, 0);
  t.equal(h.engine.streams.length, 0, 'no recognizer was even created');
  await h.start();
  await h.speak('inbound', 2000, 3000, 4000);
  await h.transcriber.drain();
  t.same(
    h.utterances.map((u) => [u.startMs, u.endMs, u.text]),
    [[2000, 3000, 'hello there']],
    'only speech after the start, timed on the media stream clock',
  );
});

t.test('audio ingest received before the start is not transcribed, even when it reaches the partition after the start', async (t) => {
  const h = harness();
  await h.audio('inbound', 0, 0xff, 'MZ1', 1000); // IVR: received and logged before the start
  await h.start({}, 2000);
  // Ingest's backlog: received before the start was accepted (1100-1900), logged after it.
  for (let ms = 100; ms < 1000; ms += 100) await h.audio('inbound', ms, 0x10, 'MZ1', 1000 + ms);
  t.equal(h.engine.streams.length, 0, 'no recognizer was even created');
  await h.speak('inbound', 1000, 2000, 3000); // received after the start (at 2000: the time the start was accepted)
  await h.transcriber.drain();
  t.same(
    h.utterances.map((u) => [u.startMs, u.endMs, u.text]),
    [[1000, 2000, 'hello there']],
    'only the audio received from the start on',
  );
  t.same(h.notTranscribed, ['not_started', ...Array(9).fill('received_before_start')], 'each skipped chunk counted with why');
});

t.test('a Twilio stop received before the start closes nothing when it reaches the partition after the start', async (t) => {
  const h = harness();
  await h.send(streamStarted('MZ1'), 1000);
  await h.audio('inbound', 0, 0x10, 'MZ1', 1100);
  await h.start({}, 2000); // start-streaming after the caller hung up: its record overtakes ingest's stop
  await h.send(streamEnded('MZ1', 'stopped'), 1500);
  t.ok(h.transcriber.started, 'the session stays open, as if the stop had come first');
  t.equal(h.sessions.length, 1);
  await h.send(stopCommand('req-stop'), 3000);
  t.notOk(h.transcriber.started, 'stop-streaming closes it (the stream is over: at once)');
  t.match(h.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { requestId: 'req-stop', reason: 'stop_requested' } });
  t.same(h.utterances, [], 'its audio was received before the start');

  const late = harness();
  await late.start({}, 2000);
  await late.send(streamStarted('MZ1'), 2100);
  await late.send(streamEnded('MZ1', 'stopped'), 2000); // received the same ms the start was accepted
  t.notOk(late.transcriber.started, 'a stop received from the start on ends the session');
  t.match(late.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { reason: 'stream_ended' } });
});

t.test('start opens a session; stop finishes the utterance in progress and reports per-role totals', async (t) => {
  const h = harness();
  await h.start({}, 100);
  t.equal(h.sessions[0]?.type, 'TranscriptionSessionOpened');
  t.match(h.sessions[0]?.data, { requestId: 'req-start', commandPartition: 3, commandOffset: 0, start: { customerId: 'cust-1' } });
  await h.speak('inbound', 0, 600, 1500);
  await h.speak('outbound', 0, 0, 1000);
  await h.audio('outbound', 1000, 0x10); // speech still going on when stop arrives
  await h.stop('req-stop', 2600);
  const last = h.utterances.at(-1);
  t.equal(last?.role, 'agent');
  t.equal(last?.startMs, 1000, 'the last words are not lost');
  const closed = h.sessions.at(-1);
  t.equal(closed?.type, 'TranscriptionSessionClosed');
  if (closed?.type !== 'TranscriptionSessionClosed') return;
  t.equal(closed.data.requestId, 'req-stop');
  t.same(
    closed.data.summaries.map((s) => [s.role, s.streamId, s.totalAudioBytes, s.audioDurationMs, s.transcripts, s.streamingSeconds]),
    [
      ['customer', 'stream-c', 15 * 800, 1500, 1, 2.5],
      ['agent', 'stream-a', 11 * 800, 1100, 1, 2.5],
    ],
  );
  t.notOk(h.transcriber.started);
  await h.speak('inbound', 3000, 3500, 4500);
  await h.transcriber.drain();
  t.equal(h.utterances.length, 2, 'after stop nothing more is transcribed');
});

t.test('start after stop resumes with the new stream ids', async (t) => {
  const h = harness();
  await h.start();
  await h.speak('inbound', 0, 300, 1000);
  await h.stop();
  await h.start({ requestId: 'req-2', customerStreamId: 'stream-c2', agentStreamId: 'stream-a2' });
  await h.speak('inbound', 1000, 1300, 2000);
  await h.transcriber.drain();
  t.same(
    h.utterances.map((u) => u.streamId),
    ['stream-c', 'stream-c2'],
  );
});

t.test('a second start while started is ignored (the first start wins)', async (t) => {
  const h = harness();
  await h.start();
  await h.start({ requestId: 'req-dup', customerStreamId: 'other' });
  t.equal(h.sessions.length, 1);
  await h.speak('inbound', 0, 300, 1000);
  await h.transcriber.drain();
  t.equal(h.utterances[0]?.streamId, 'stream-c');
});

t.test('utterance ids are deterministic: call, stream, track, start sample', async (t) => {
  const a = harness();
  const b = harness();
  for (const h of [a, b]) {
    await h.start();
    await h.speak('inbound', 0, 500, 1200);
    await h.speak('outbound', 1200, 1500, 2200);
    await h.transcriber.drain();
  }
  t.same(
    a.utterances.map((u) => u.utteranceId),
    [`${CALL}:MZ1:inbound:0`, `${CALL}:MZ1:outbound:9600`],
  );
  t.same(
    a.utterances.map((u) => [u.utteranceId, u.eventId]),
    b.utterances.map((u) => [u.utteranceId, u.eventId]),
  );
  t.match(a.utterances[0]?.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

t.test('redaction output modes: redacted, unredacted, both', async (t) => {
  const modes = [
    ['redacted', 'my card is #### #### #### ####', null],
    ['unredacted', null, 'my card is 4111 1111 1111 1111'],
    ['redacted_and_unredacted', 'my card is #### #### #### ####', 'my card is 4111 1111 1111 1111'],
  ] as const;
  for (const [mode, text, unredacted] of modes) {
    const h = harness();
    await h.start({ redactionOutput: mode });
    await h.speak('inbound', 0, 500, 1200, 0x20);
    await h.transcriber.drain();
    t.same([h.utterances[0]?.text, h.utterances[0]?.unredactedText], [text, unredacted], mode);
  }
});

t.test('holds the offset of the utterance in progress and releases it once written', async (t) => {
  const h = harness();
  await h.start(); // offset 0
  await h.speak('inbound', 0, 0, 500); // offsets 1-5: silence
  await h.transcriber.drain();
  t.equal(h.transcriber.holdOffset(), null, 'nothing pending in a pause');
  await h.speak('inbound', 500, 900, 900); // offsets 6-9: speech
  t.equal(h.transcriber.holdOffset(), 5, 'the chunk holding the padded start of the speech');
  await h.speak('inbound', 900, 900, 1400); // silence ends it
  await h.transcriber.drain();
  t.equal(h.utterances.length, 1);
  t.equal(h.transcriber.holdOffset(), null, 'released once written');
});

t.test('a replaced stream finishes what was said and continues on the new stream', async (t) => {
  const h = harness();
  await h.start();
  await h.speak('inbound', 0, 300, 300);
  await h.send(streamEnded('MZ1', 'replaced'));
  t.equal(h.utterances.length, 1, 'flushed');
  t.ok(h.transcriber.started, 'the session goes on');
  await h.send(streamStarted('MZ2'));
  for (let ms = 0; ms < 1000; ms += 100) await h.audio('inbound', ms, ms < 400 ? 0x10 : 0xff, 'MZ2');
  await h.transcriber.drain();
  t.equal(h.utterances[1]?.utteranceId, `${CALL}:MZ2:inbound:0`);
});

t.test('Twilio stop ends the session; a timestamp gap is filled so times stay on the media clock', async (t) => {
  const h = harness();
  await h.start();
  await h.audio('inbound', 0, 0xff);
  await h.audio('inbound', 3000, 0x10); // 2.9 s of frames lost
  await h.audio('inbound', 3100, 0xff);
  await h.send(streamEnded('MZ1', 'stopped'));
  t.equal(h.utterances[0]?.startMs, 3000);
  t.equal(h.sessions.at(-1)?.type, 'TranscriptionSessionClosed');
  t.match(h.sessions.at(-1)?.data, { reason: 'stream_ended' });
});

t.test('open sessions at a committed offset are those started before it and not closed before it', async (t) => {
  const opened = (callSid: string, offset: number, partition = 1): SessionEvent => ({
    eventId: `o${offset}`,
    callSid,
    tenantId: 'app_a',
    occurredAtMs: offset,
    type: 'TranscriptionSessionOpened',
    data: {
      requestId: `r${offset}`,
      customerStreamId: 'c',
      agentStreamId: 'a',
      language: 'en-US',
      start: { requestId: `r${offset}` } as TranscriptionStartRequested,
      commandPartition: partition,
      commandOffset: offset,
      startRequestedAtMs: offset - 1, // the API accepted it a moment before asr opened it
    },
  });
  const closed = (callSid: string, offset: number): SessionEvent => ({
    eventId: `c${offset}`,
    callSid,
    tenantId: 'app_a',
    occurredAtMs: offset,
    type: 'TranscriptionSessionClosed',
    data: { requestId: null, reason: 'stop_requested', summaries: [], commandPartition: 1, commandOffset: offset },
  });
  const events = [opened('CA1', 10), closed('CA1', 20), opened('CA2', 15), opened('CA3', 30), opened('CA4', 5, 2), opened('CA1', 40)];
  t.same(
    openSessionsAt(events, 1, 25).map((s) => s.callSid),
    ['CA2'],
    'CA1 closed before 25, CA3 opens after it (replayed), CA4 is another partition',
  );
  t.same(
    openSessionsAt(events, 1, 18)
      .map((s) => s.callSid)
      .sort(),
    ['CA1', 'CA2'],
    'CA1 was still open at 18',
  );
  t.same(
    openSessionsAt(events, 1, 100)
      .map((s) => s.callSid)
      .sort(),
    ['CA1', 'CA2', 'CA3'],
    'CA1 reopened at 40',
  );
  t.match(openSessionsAt(events, 1, 25), [{ callSid: 'CA2', openedAtMs: 14, requestedAtMs: 14 }], 'timed by the start command');
  const old = opened('CA5', 12);
  const written = { ...old, data: { ...old.data, startRequestedAtMs: 0 } } as SessionEvent; // before the field existed
  t.match(openSessionsAt([written], 1, 25), [{ openedAtMs: 12, requestedAtMs: 0 }], 'an older record: opened when asr opened it');
});

t.test('a restored session keeps its start time: backlog audio received before the start stays untranscribed', async (t) => {
  const h = harness();
  h.transcriber.restore(startRequest({ customerStreamId: 'stream-c', agentStreamId: 'stream-a' }), 2000, 2000);
  for (let ms = 0; ms < 500; ms += 100) await h.audio('inbound', ms, 0x10, 'MZ1', 1500 + ms); // received before the start
  for (let ms = 500; ms < 2500; ms += 100) await h.audio('inbound', ms, ms < 1500 ? 0x10 : 0xff, 'MZ1', 2000 + ms);
  await h.transcriber.drain();
  t.same(
    h.utterances.map((u) => [u.startMs, u.endMs]),
    [[500, 1500]],
    'only what ingest received from the start on',
  );
  t.same(h.notTranscribed, Array(5).fill('received_before_start'));
});

t.test('an utterance whose text is ready keeps its audio held until it is written (regression: lost on a crash)', async (t) => {
  const h = harness();
  // Writes hang, as when Kafka is slow; the engine lets go of an utterance as soon as its text
  // is ready, so only the transcriber can still hold its audio.
  const gates: (() => void)[] = [];
  const inner = h.transcriber as unknown as { deps: { emit: { utterance: (e: UtteranceRecognized) => Promise<void> } } };
  const write = inner.deps.emit.utterance;
  inner.deps.emit.utterance = async (e) => {
    await new Promise<void>((resolve) => gates.push(resolve));
    await write(e);
  };
  await h.start(); // offset 0
  await h.speak('inbound', 0, 0, 500); // offsets 1-5: silence
  await h.speak('inbound', 500, 900, 1400); // offsets 6-14: first utterance
  await h.speak('inbound', 1400, 1800, 2300); // offsets 15-23: second utterance
  const settle = () => new Promise((r) => setTimeout(r, 20));
  await settle();
  t.equal(h.engine.streams[0]?.pendingFromSample, h.engine.streams[0]?.samples, 'the engine holds nothing any more');
  t.ok((h.transcriber.holdOffset() ?? Number.POSITIVE_INFINITY) <= 6, `first utterance held (${h.transcriber.holdOffset()})`);
  gates.shift()?.(); // the first is written; the second is being written
  await settle();
  t.equal(h.utterances.length, 1);
  t.ok((h.transcriber.holdOffset() ?? Number.POSITIVE_INFINITY) <= 15, `second utterance still held (${h.transcriber.holdOffset()})`);
  gates.shift()?.();
  await h.transcriber.drain();
  t.equal(h.utterances.length, 2);
  t.equal(h.transcriber.holdOffset(), null, 'released once written');
});

// A stop command (from the API's producer) can reach the partition before audio ingest received
// earlier: after a Kafka outage ingest writes its backlog late; its 100 ms batching alone does
// it on every call. That audio belongs to the session (regression: its utterances were lost).
t.test('a stop waits for audio received before it that reaches the partition after it', async (t) => {
  const h = harness();
  await h.start({}, 0);
  for (let ms = 0; ms < 500; ms += 100) await h.audio('inbound', ms, 0x10, 'MZ1', 1000 + ms); // speech starts
  await h.stopCommand('req-stop', 2000); // the API's stop overtakes ingest's backlog
  t.ok(h.transcriber.started, 'the stop waits: the stream is live');
  t.equal(h.transcriber.holdOffset(), 1, 'the oldest needed audio stays held');
  // The backlog: received before the stop (occurredAtMs ≤ 2000), written after it.
  for (let ms = 500; ms < 1000; ms += 100) await h.audio('inbound', ms, 0x10, 'MZ1', 1900 + ms / 10);
  await h.audio('outbound', 0, 0x20, 'MZ1', 1900);
  t.ok(h.transcriber.started);
  await h.audio('inbound', 1000, 0x30, 'MZ1', 2050); // received after the stop: ends the wait, not transcribed
  t.notOk(h.transcriber.started, 'closed');
  t.same(
    h.utterances.map((u) => [u.role, u.startMs, u.endMs]),
    [
      ['customer', 0, 1000],
      ['agent', 0, 100],
    ],
    'the late audio is transcribed; the chunk after the stop is not',
  );
  const closed = h.sessions.at(-1);
  t.match(closed, { type: 'TranscriptionSessionClosed', data: { requestId: 'req-stop', reason: 'stop_requested', commandOffset: 6 } });
  t.same(
    closed?.type === 'TranscriptionSessionClosed' && closed.data.summaries.map((s) => [s.role, s.totalAudioBytes, s.streamingSeconds]),
    [
      ['customer', 10 * 800, 2],
      ['agent', 800, 2],
    ],
    'totals count the late audio; streaming time ends at the stop',
  );
});

t.test('a waiting stop holds its own offset, so a new owner replays it and the audio after it', async (t) => {
  const h = harness();
  await h.start({}, 0);
  await h.audio('inbound', 0, 0xff, 'MZ1', 10); // silence: nothing pending
  await h.transcriber.drain();
  t.equal(h.transcriber.holdOffset(), null);
  await h.stopCommand('req-stop', 2000);
  t.equal(h.transcriber.holdOffset(), 2, 'the stop command itself');
  await h.audio('inbound', 100, 0xff, 'MZ1', 2100);
  await h.transcriber.drain();
  t.equal(h.transcriber.holdOffset(), null, 'released once the session is closed');
});

t.test('a stop with no live stream closes at once', async (t) => {
  const h = harness();
  await h.start();
  await h.stopCommand('req-1', 10); // start-streaming, then stop, no media stream ever connected
  t.notOk(h.transcriber.started);
  t.match(h.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { requestId: 'req-1' } });

  await h.start({ requestId: 'req-2' });
  await h.speak('inbound', 0, 300, 300);
  await h.send(streamEnded('MZ1', 'closed_without_stop'));
  t.ok(h.transcriber.started, 'a lost socket does not end the session');
  await h.stopCommand('req-3', 20);
  t.notOk(h.transcriber.started, 'the stream had ended: nothing more can come');
  t.equal(h.utterances.length, 1);
});

t.test('the end of the stream completes a waiting stop, with the stop request id', async (t) => {
  const h = harness();
  await h.start();
  await h.speak('inbound', 0, 300, 300);
  await h.stopCommand('req-stop', 5000);
  t.ok(h.transcriber.started);
  await h.send(streamEnded('MZ1', 'stopped'), 4000);
  t.notOk(h.transcriber.started);
  t.match(h.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { requestId: 'req-stop', reason: 'stop_requested' } });
  t.equal(h.utterances.length, 1, 'what was said is flushed');
});

t.test('a stop whose late audio never comes completes after the grace period', async (t) => {
  const h = harness();
  await h.start();
  await h.speak('inbound', 0, 300, 300); // then the ingest node dies: no StreamEnded, no more audio
  await h.stopCommand('req-stop', 5000);
  t.notOk(h.transcriber.stopExpired(h.clock.ms + 9_999));
  await h.transcriber.expireStop();
  t.ok(h.transcriber.started, 'not before the grace period');
  h.clock.ms += 10_000;
  t.ok(h.transcriber.stopExpired(h.clock.ms));
  await h.transcriber.expireStop();
  t.notOk(h.transcriber.started);
  t.match(h.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { requestId: 'req-stop' } });
  t.equal(h.utterances.length, 1);
});

t.test('a start while a stop waits completes the stop first (hold, then back)', async (t) => {
  const h = harness();
  await h.start({}, 0);
  await h.speak('inbound', 0, 300, 300);
  await h.stopCommand('req-stop', 5000);
  await h.start({ requestId: 'req-2', customerStreamId: 'stream-c2' }, 5001);
  t.same(
    h.sessions.map((s) => [s.type, s.data.requestId]),
    [
      ['TranscriptionSessionOpened', 'req-start'],
      ['TranscriptionSessionClosed', 'req-stop'],
      ['TranscriptionSessionOpened', 'req-2'],
    ],
  );
  await h.speak('inbound', 1000, 1300, 2000);
  await h.transcriber.drain();
  t.same(
    h.utterances.map((u) => u.streamId),
    ['stream-c', 'stream-c2'],
  );
});

t.test("stop-streaming after Twilio ended the session is answered with that session's summary", async (t) => {
  const h = harness();
  await h.start();
  await h.speak('inbound', 0, 300, 1000);
  await h.send(streamEnded('MZ1', 'stopped'));
  t.match(h.sessions.at(-1), { type: 'TranscriptionSessionClosed', data: { requestId: null, reason: 'stream_ended' } });
  await h.stopCommand('req-late', 6000); // the backend hangs up after Twilio did
  const late = h.sessions.at(-1);
  t.match(late, {
    type: 'TranscriptionSessionClosed',
    data: { requestId: 'req-late', reason: 'stream_ended', commandOffset: h.offset() - 1 },
  });
  t.same(
    late?.type === 'TranscriptionSessionClosed' && late.data.summaries.map((s) => [s.role, s.totalAudioBytes, s.transcripts]),
    [
      ['customer', 10 * 800, 1],
      ['agent', 0, 0],
    ],
    'the summary of the session that ended',
  );
  t.equal(h.utterances.length, 1, 'nothing transcribed twice');
  // A consumer that never saw the session (a takeover) still answers, with no summary.
  const fresh = harness();
  await fresh.stopCommand('req-orphan', 10);
  t.match(fresh.sessions, [{ type: 'TranscriptionSessionClosed', data: { requestId: 'req-orphan', summaries: [] } }]);
});
