import t from 'tap';
import { startTopology, waitStored } from '../support/topology.js';
import { waitFor } from '../support/wait.js';

/**
 * SPEC §1 distributed mode, the way an operator runs it without Docker: the servers of
 * `earshot infra up` and one `earshot start --mode distributed --apps <app>` process per app
 * (ingest, api, asr, webhooks, store). One two-party call goes in through the API and a
 * Twilio-shaped WebSocket; every utterance must come out at the tenant's HTTPS webhook (own
 * CA), in ClickHouse, and from the after-call messages API of the api process.
 */
t.test('distributed topology: one process per app, a call in, utterances at the webhook and in ClickHouse', async (t) => {
  const topology = await startTopology(t, { apps: ['ingest', 'asr', 'webhooks', 'store', 'api'] });
  const pids = [...topology.processes.values()].flat().map((p) => p.child.pid);
  t.equal(new Set(pids).size, 5, 'five processes, one per app');

  const { callSid, done } = topology.playCall();
  const result = await done;
  t.equal(result.start?.status, 200, 'start-streaming accepted by the api process');
  t.equal(result.stop?.status, 200, 'stop-streaming answered with the summary from the asr process');

  const expected = topology.expectedUtterances;
  await waitFor(`${expected} webhook posts`, () => topology.posted(callSid).length >= expected, 60_000);
  const posts = topology.posted(callSid);
  t.equal(posts.length, expected, 'every utterance posted once to the webhook');
  for (const role of ['customer', 'agent'] as const) {
    const starts = posts.filter((p) => p.sender.role === role).map((p) => p.autotranscribeResponse.start);
    t.same(
      starts,
      [...starts].sort((a, b) => a - b),
      `${role}: posted in transcription order`,
    );
  }

  // ClickHouse, straight from SQL (what an analyst sees), duplicates collapsed.
  const rows = await waitStored(topology, callSid, 30_000);
  t.equal(rows.length, expected, 'every utterance stored once in ClickHouse');
  const wer = topology.werOf(rows);
  t.ok(wer.customer < 0.2, `customer: WER ${(wer.customer * 100).toFixed(1)} % through the distributed path`);
  t.ok(wer.agent < 0.2, `agent: WER ${(wer.agent * 100).toFixed(1)} % through the distributed path`);

  // The after-call API of the api process reads the same store.
  const messages = await topology.messages(callSid);
  t.equal(messages.status, 200);
  t.same(
    messages.items.map((i) => i.text),
    rows.map((r) => r.text),
    'the messages API lists every stored utterance, in time order',
  );

  // Graceful shutdown of every process (SIGTERM): each exits 0.
  for (const p of [...topology.processes.values()].flat().reverse()) t.equal(await p.stop(), 0, `${p.apps} stopped cleanly`);
});
