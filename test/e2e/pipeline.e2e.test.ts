import t from 'tap';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { pooledWer } from '../../scripts/test-audio/wer.js';
import { byTurn } from '../support/turns.js';
import { waitFor } from '../support/wait.js';
import { startGateway } from './support.js';

/**
 * A two-party call played as Twilio would, through ingest, the event log and the asr
 * consumer with the real model, in embedded mode and on real Kafka: every turn comes out as
 * an utterance of the right role, in order, with text close to what was said, and
 * stop-streaming answers with the session's summary.
 */
for (const kafka of [false, true]) {
  t.test(`a simulated two-party call is transcribed end to end (${kafka ? 'Kafka' : 'embedded'})`, async (t) => {
    const gw = await startGateway(t, { kafka });
    const { customer, agent } = gw.corpus.call.tracks;
    const callSid = newCallSid();
    const result = await simulateCall({
      apiUrl: gw.apiUrl,
      ...gw.tenant,
      callSid,
      inbound: gw.audio(customer.mulaw),
      outbound: gw.audio(agent.mulaw),
      speed: 4,
      // Stop after the line went quiet, as a backend does after hang-up: then every byte sent
      // is on the log before the stop command, and the summary must match it exactly.
      stopDelayMs: 1000,
      startBody: { autotranscribeParams: { redactionOutput: 'redacted' } },
    });
    t.equal((result.start as { status: number } | null)?.status, 200, 'start-streaming accepted');
    const stop = result.stop as {
      status: number;
      body: {
        autotranscribeResponse: Record<string, { summary: { transcripts: number; totalAudioBytes: number; audioDurationMs: number } }>;
      };
    };
    t.equal(stop.status, 200, 'stop-streaming answered after the session closed');

    // The session's own count (stop-streaming's summaries): a turn of two sentences may be two utterances.
    const expected = Object.values(stop.body.autotranscribeResponse).reduce((n, r) => n + r.summary.transcripts, 0);
    t.ok(expected >= customer.utterances.length + agent.utterances.length, `${expected} utterances, at least one per turn`);
    await waitFor(`${expected} utterances`, () => gw.utterances.filter((u) => u.key === callSid).length >= expected, 60_000);
    const mine = gw.utterances.filter((u) => u.key === callSid).map((r) => r.value);
    for (const [role, track] of [
      ['customer', customer],
      ['agent', agent],
    ] as const) {
      const got = mine.filter((u) => u.role === role).sort((a, b) => a.startMs - b.startMs);
      const { turns, stray, overlapping } = byTurn(got, track.utterances);
      t.same([stray, overlapping], [[], []], `${role}: nothing outside the turns, nothing twice`);
      const wer = pooledWer(turns.map((r) => [r.turn.text, r.text] as const));
      t.ok(wer.wer < 0.25, `${role}: WER ${(wer.wer * 100).toFixed(1)} %`);
      turns.forEach((r, i) => {
        t.ok(
          Math.abs((r.startMs ?? -1e9) - r.turn.startMs) < 600,
          `${role} turn ${i + 1} starts near ${r.turn.startMs} ms (got ${r.startMs})`,
        );
      });
      const summary = stop.body.autotranscribeResponse[role]?.summary;
      t.equal(summary?.transcripts, got.length, `${role}: summary counts the transcripts`);
      const frames = role === 'customer' ? result.framesSent.inbound : result.framesSent.outbound;
      t.equal(summary?.totalAudioBytes, frames * 160, `${role}: totalAudioBytes = every byte sent`);
      t.equal(summary?.audioDurationMs, frames * 20, `${role}: audioDurationMs = 20 ms per frame sent`);
      t.ok(
        got.every((u) => u.senderExternalId === (role === 'customer' ? `customer-${callSid.slice(2, 10)}` : 'agent-007')),
        `${role}: sender ids from start-streaming`,
      );
    }
    t.equal(new Set(mine.map((u) => u.utteranceId)).size, mine.length, 'no duplicate utterance');
    t.ok(
      mine.every((u) => u.unredactedText === null && u.engine === 'moonshine'),
      'redacted output only; engine named',
    );
  });
}
