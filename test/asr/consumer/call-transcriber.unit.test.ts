import t from 'tap';
import { CallTranscriber, type Emitter } from '../../../apps/asr/src/consumer/call-transcriber.js';
import { openSessionsAt } from '../../../apps/asr/src/consumer/restore-sessions.js';
import { DEFAULT_RULES } from '../../../apps/asr/src/domain/redaction.js';
import type { CallEvent, SessionEvent, TranscriptionStartRequested, UtteranceRecognized } from '../../../apps/shared/src/events.js';
import { startRequest } from '../../support/fixtures.js';
import { fakeEngine } from '../support/fake-engine.js';

// Given/when/then over one call: events in, utterance and session events out.
const CALL = 'CA0123456789abcdef0123456789abcdef';

function harness(words: Record<number, string> = { 16: 'hello there', 32: 'my card is 4111 1111 1111 1111' }) {
  const utterances: UtteranceRecognized[] = [];
  const sessions: SessionEvent[] = [];
  const errors: unknown[] = [];
  const emit: Emitter = {
    utterance: async (e) => {
      utterances.push(e);
    },
    session: async (e) => {
      sessions.push(e);
    },
  };
  const engine = fakeEngine(words);
  const transcriber = new CallTranscriber(CALL, 'app_a', 3, {
    engine,
    emit,
    redactionRules: () => DEFAULT_RULES,
    now: () => 1000,
    onError: (e) => errors.push(e),
  });
  let offset = 0;
  const send = async (event: Omit<CallEvent, 'eventId' | 'callSid' | 'tenantId' | 'occurredAtMs'>, at = 0) => {
    await transcriber.handle(
      { eventId: `e${offset}`, callSid: CALL, tenantId: 'app_a', occurredAtMs: at, ...event } as CallEvent,
      offset++,
    );
  };
  const start = (over: Partial<TranscriptionStartRequested> = {}, at = 0) =>
    send(
      {
        type: 'TranscriptionStartRequested',
        data: startRequest({ customerId: 'cust-1', customerStreamId: 'stream-c', agentStreamId: 'stream-a', ...over }),
      },
      at,
    );
  /** 100 ms of speech (byte) or silence (0xff) on a track at media time ms. */
  const audio = (track: 'inbound' | 'outbound', ms: number, byte: number, streamSid = 'MZ1') =>
    send({
      type: 'AudioChunkReceived',
      data: {
        streamSid,
        track,
        firstChunk: ms / 20 + 1,
        lastChunk: ms / 20 + 5,
        timestampMs: ms,
        durationMs: 100,
        payload: Buffer.alloc(800, byte),
      },
    });
  /** Speech from..to ms then silence until `until` on one track. */
  const speak = async (track: 'inbound' | 'outbound', from: number, to: number, until: number, byte = 0x10) => {
    for (let ms = from; ms < until; ms += 100) await audio(track, ms, ms < to ? byte : 0xff);
  };
  const stop = (requestId = 'req-stop', at = 5000) => send({ type: 'TranscriptionStopRequested', data: { requestId } }, at);
  return { transcriber, utterances, sessions, errors, engine, send, start, audio, speak, stop, offset: () => offset };
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
  await h.send({ type: 'StreamEnded', data: { streamSid: 'MZ1', reason: 'replaced', detail: null, framesReceived: 0, framesDropped: 0 } });
  t.equal(h.utterances.length, 1, 'flushed');
  t.ok(h.transcriber.started, 'the session goes on');
  await h.send({
    type: 'StreamStarted',
    data: {
      streamSid: 'MZ2',
      accountSid: 'AC1',
      tracks: ['inbound'],
      customParameters: {},
      encoding: 'audio/x-mulaw',
      sampleRate: 8000,
      channels: 1,
      ingestNode: 'n',
    },
  });
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
  await h.send({ type: 'StreamEnded', data: { streamSid: 'MZ1', reason: 'stopped', detail: null, framesReceived: 0, framesDropped: 0 } });
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
