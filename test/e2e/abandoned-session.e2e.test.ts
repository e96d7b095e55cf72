import { readFileSync } from 'node:fs';
import t from 'tap';
import type { CallEventPayload } from '../../apps/shared/src/events.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { audioChunk, callEventMaker, dtmf, startCommand } from '../asr/support/call-events.js';
import { startRealAsr } from '../asr/support/outputs.js';
import { waitFor } from '../support/wait.js';

/**
 * A call whose ingest node died mid-sentence and that nobody stops (no reconnect, no
 * stop-streaming, no StreamEnded): real Kafka, the real asr app and model, the corpus call's
 * customer track cut 2 s into its first turn. The session must close once the partition's own
 * clock (the event times read there) has moved on by EARSHOT_ASR_SESSION_IDLE_MS, not on the
 * wall clock, and the words said before the cut must be delivered.
 */
const A = 'CA5709000000000000000000000000abcd';
const OTHER = 'CA5709000000000000000000000000ef01';
const CUT_AT_MS = 9000; // the customer's first turn runs 6.9-11.3 s
const IDLE_MS = 5000;

t.test('a session whose stream died without an end closes on the partition clock, its words delivered', async (t) => {
  const corpus = generateTestAudio();
  const { runtime, utterances, sessions } = await startRealAsr(t, {
    EARSHOT_TOPIC_PARTITIONS: '1',
    EARSHOT_ASR_SESSION_IDLE_MS: String(IDLE_MS),
  });
  const closed = () => sessions.find((s) => s.callSid === A && s.type === 'TranscriptionSessionClosed');

  // Event times an hour ago: only the partition's clock may decide, and the wall clock is far ahead.
  const t0 = Date.now() - 3_600_000;
  const { record } = callEventMaker('ab-');
  const event = (callSid: string, occurredAtMs: number, payload: CallEventPayload) => record(callSid, occurredAtMs, payload);
  const audio = readFileSync(corpus.call.tracks.customer.mulaw);
  const chunks = [];
  for (let ms = 0; ms < CUT_AT_MS; ms += 100)
    chunks.push(event(A, t0 + ms + 100, audioChunk(ms, audio.subarray(ms * 8, (ms + 100) * 8), { streamSid: 'MZdead' })));
  await runtime.eventLog.produce(TOPICS.callEvents, [event(A, t0, startCommand({ requestId: 'req-a' })), ...chunks]);

  // Another call on the partition, but only 3 s of event time later: not long enough.
  await runtime.eventLog.produce(TOPICS.callEvents, [event(OTHER, t0 + CUT_AT_MS + 3000, dtmf('MZother', '1'))]);
  // Longer than the idle time on the wall clock: a wall-clock rule would close the session here.
  await new Promise((r) => setTimeout(r, IDLE_MS + 1500));
  t.notOk(closed(), `still open: the partition clock has moved 3 s past the last audio, the wall clock ${(IDLE_MS + 1500) / 1000} s`);

  await runtime.eventLog.produce(TOPICS.callEvents, [event(OTHER, t0 + CUT_AT_MS + IDLE_MS + 1000, dtmf('MZother', '2'))]);
  await waitFor('the abandoned session closed', () => closed() !== undefined, 60_000);
  t.match(closed(), { data: { requestId: null, reason: 'stream_ended' } }, 'closed as a stream that ended');
  await waitFor('the cut-off turn delivered', () => utterances.some((u) => u.callSid === A), 30_000);
  const mine = utterances.filter((u) => u.callSid === A);
  t.equal(mine.length, 1, 'one utterance: the turn the node died in');
  const turn = corpus.call.tracks.customer.utterances[0] as { startMs: number; text: string };
  const got = mine[0] as (typeof mine)[number];
  t.ok(Math.abs(got.startMs - turn.startMs) < 300, `it starts where the turn does (${got.startMs} vs ${turn.startMs} ms)`);
  t.ok(got.endMs <= CUT_AT_MS, `it ends by the cut (${got.endMs} ms)`);
  const firstWords = turn.text.toLowerCase().split(/\s+/).slice(0, 3);
  const said = got.unredactedText ?? got.text ?? '';
  const text = said.toLowerCase();
  t.ok(
    firstWords.filter((w) => text.includes(w.replace(/[^a-z']/g, ''))).length >= 2,
    `the words said before the cut: "${said}" (the turn begins "${firstWords.join(' ')}")`,
  );
  t.match(await runtime.metrics.metrics(), /earshot_asr_sessions_abandoned_total\{[^}]*\} 1\b/, 'counted');
});
