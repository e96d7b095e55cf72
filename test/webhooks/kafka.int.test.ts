import t from 'tap';
import { startWebhooksApp } from '../../apps/webhooks/main.js';
import { waitFor } from '../support/wait.js';
import { callSid, webhookHarness } from './support/harness.js';
import { startReceiver } from './support/receiver.js';

// The dispatcher on the real Kafka broker and schema registry: utterances read from
// earshot.utterances.v1, outcomes written as Avro DeliveryAttempted events to
// earshot.deliveries.v1, offsets committed once outcomes are written.
t.test('through real Kafka: delivered in order, outcomes on the deliveries topic, a restart re-sends nothing delivered', async (t) => {
  const h = await webhookHarness({ kafka: true });
  t.teardown(() => h.cleanup());
  const target = await startReceiver(null, (r) =>
    (r.body as { autotranscribeResponse: { start: number } }).autotranscribeResponse.start === 3000 ? 500 : 200,
  );
  t.teardown(() => target.close());
  const tenant = await h.tenant(target.url);
  const [a, b] = [callSid(), callSid()];
  for (let i = 1; i <= 3; i++) {
    await h.utter(tenant, a, i);
    await h.utter(tenant, b, i);
  }
  const finals = await h.finals(tenant, 6);
  t.equal(finals.filter((d) => d.outcome === 'delivered').length, 4);
  t.same(
    finals
      .filter((d) => d.outcome === 'http_error')
      .map((d) => [d.httpStatus, d.callSid])
      .sort(),
    [
      [500, a],
      [500, b],
    ].sort(),
    'the third message of each call met a 500',
  );
  for (const c of [a, b]) {
    const starts = target.received
      .filter((r) => (r.body as { externalConversationId: string }).externalConversationId === c)
      .map((r) => (r.body as { autotranscribeResponse: { start: number } }).autotranscribeResponse.start);
    t.same(starts, [1000, 2000, 3000], `call ${c.slice(0, 8)} in transcription order`);
  }
  t.ok(
    finals.every((d) => d.latencyMs >= 0 && d.occurredAtMs > 0 && d.eventId.length > 0),
    'events carry latency, time and id',
  );

  // A graceful stop commits after the outcomes are written: a new dispatcher in the same
  // group starts after them and sends only what is new.
  await h.app.stop();
  const second = await startWebhooksApp(h.runtime, { limits: { timeoutMs: 2000 } });
  t.teardown(() => second.stop());
  await h.utter(tenant, a, 4);
  await h.finals(tenant, 7);
  await waitFor('the new message received', () => target.received.length >= 7);
  t.equal(target.received.length, 7, 'nothing delivered before the restart was sent again');
});
