import { readFileSync } from 'node:fs';
import t from 'tap';
import type { CallEventPayload } from '../../apps/shared/src/events.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { audioChunk, callEventMaker, startCommand, stopCommand } from '../asr/support/call-events.js';
import { startRealAsr } from '../asr/support/outputs.js';
import { expectedCallUtterances } from '../support/expected-utterances.js';
import { waitFor } from '../support/wait.js';

/**
 * The order a Kafka outage leaves on a call's partition when it spans stop-streaming: the api's
 * stop command is written before ingest's backlog of audio that ingest received earlier (two
 * producers; arrival order). Real Kafka, the real asr app and model, the corpus call's customer
 * track. The customer's third turn (26.0-28.2 s of media) is in that backlog: it must be
 * transcribed, and nothing received after the stop may be.
 */
const CALL = 'CA5709000000000000000000000000000a';
const STOP_AT_MEDIA_MS = 30_000; // the stop is requested when 30 s of the call have been received
const BACKLOG_FROM_MS = 24_000; // ingest could not write 24-30 s before the outage ended

t.test('audio received before a stop but written after it is still transcribed', async (t) => {
  const corpus = generateTestAudio();
  const { runtime, utterances, sessions } = await startRealAsr(t, { EARSHOT_TOPIC_PARTITIONS: '1' });

  const { t0, event, chunks } = customerTrack(CALL, 'MZstop', readFileSync(corpus.call.tracks.customer.mulaw));

  await runtime.eventLog.produce(TOPICS.callEvents, [event(t0, startCommand({ requestId: 'req-start' })), ...chunks(0, BACKLOG_FROM_MS)]);
  // The api's stop (requested at 30 s) lands first, then ingest's backlog, then the live stream.
  await runtime.eventLog.produce(TOPICS.callEvents, [event(t0 + STOP_AT_MEDIA_MS + 50, stopCommand('req-stop'))]);
  await runtime.eventLog.produce(TOPICS.callEvents, chunks(BACKLOG_FROM_MS, STOP_AT_MEDIA_MS));
  await runtime.eventLog.produce(TOPICS.callEvents, chunks(STOP_AT_MEDIA_MS, corpus.call.durationMs));

  await waitFor('the session closed', () => sessions.some((s) => s.type === 'TranscriptionSessionClosed'), 120_000);
  const closed = sessions.find((s) => s.type === 'TranscriptionSessionClosed');
  t.match(closed, { data: { requestId: 'req-stop', reason: 'stop_requested' } }, 'closed by the stop, so stop-streaming answers');
  // As the engine ends them offline ("Great." and "How long will that take?" may be two).
  const expected = (await expectedCallUtterances(corpus)).customer.filter((u) => u.endMs < STOP_AT_MEDIA_MS);
  await waitFor('every utterance before the stop', () => utterances.length >= expected.length, 60_000);
  const got = [...utterances].sort((a, b) => a.startMs - b.startMs);
  t.equal(got.length, expected.length, `${expected.length} utterances spoken before the stop, no more`);
  t.match(got.at(-1)?.unredactedText ?? got.at(-1)?.text, /long will that take/i, 'the turn from the backlog is there');
  t.ok(
    got.every((u) => u.endMs <= STOP_AT_MEDIA_MS),
    'nothing received after the stop was transcribed',
  );
});

/**
 * The mirror case: start-streaming is accepted while ingest is still behind (its backlog holds
 * the customer's first turn, 6.9-11.3 s), so the start lands on the partition before audio
 * ingest received earlier. SPEC §3.2: audio before the start is never transcribed, whatever
 * order the two producers' records reach the log in.
 */
const START_CALL = 'CA5709000000000000000000000000000b';
const START_AT_MEDIA_MS = 13_000;

t.test('audio received before a start but written after it is not transcribed', async (t) => {
  const corpus = generateTestAudio();
  const { runtime, utterances, sessions } = await startRealAsr(t, { EARSHOT_TOPIC_PARTITIONS: '1' });
  const { t0, event, chunks } = customerTrack(START_CALL, 'MZstart', readFileSync(corpus.call.tracks.customer.mulaw));

  await runtime.eventLog.produce(TOPICS.callEvents, chunks(0, 5_000)); // the IVR, written in time
  await runtime.eventLog.produce(TOPICS.callEvents, [event(t0 + START_AT_MEDIA_MS + 50, startCommand({ requestId: 'req-start-late' }))]);
  await runtime.eventLog.produce(TOPICS.callEvents, chunks(5_000, START_AT_MEDIA_MS)); // ingest's backlog
  await runtime.eventLog.produce(TOPICS.callEvents, chunks(START_AT_MEDIA_MS, corpus.call.durationMs));

  await waitFor('the last turn', () => utterances.some((u) => /very much/i.test(u.unredactedText ?? u.text ?? '')), 120_000);
  t.match(sessions[0], { type: 'TranscriptionSessionOpened', data: { requestId: 'req-start-late' } });
  const got = [...utterances].sort((a, b) => a.startMs - b.startMs);
  t.ok(
    got.every((u) => u.startMs >= START_AT_MEDIA_MS),
    `nothing received before the start was transcribed (starts: ${got.map((u) => u.startMs).join(', ')})`,
  );
  t.match(got[0]?.unredactedText ?? got[0]?.text, /last tuesday/i, "the first turn after the start is the customer's second");
});

/**
 * The corpus call's customer track as ingest would write it. Ingest's clock: the call started
 * at t0; a 100 ms chunk is received when its last frame is (each says 100 ms, the file's shorter
 * last one too).
 */
function customerTrack(callSid: string, streamSid: string, audio: Buffer) {
  const t0 = Date.now() - 60_000;
  const { record } = callEventMaker(`${streamSid}-`);
  const event = (occurredAtMs: number, payload: CallEventPayload) => record(callSid, occurredAtMs, payload);
  const chunks = (from: number, to: number) => {
    const out = [];
    for (let ms = from; ms < to && ms * 8 < audio.length; ms += 100)
      out.push(event(t0 + ms + 100, audioChunk(ms, audio.subarray(ms * 8, (ms + 100) * 8), { streamSid, durationMs: 100 })));
    return out;
  };
  return { t0, event, chunks };
}
