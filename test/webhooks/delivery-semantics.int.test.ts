import { createServer } from 'node:net';
import t from 'tap';
import { sleep, waitFor } from '../support/wait.js';
import { callSid, webhookHarness } from './support/harness.js';
import { type Receiver, startReceiver } from './support/receiver.js';

// SPEC §8 delivery semantics against real HTTP servers that hang, fail, are down or are slow.
// Embedded event log (the same dispatcher runs on Kafka in kafka.int.test.ts). Small limits
// make the behaviour visible; nothing here checks a duration.
const h = await webhookHarness({ limits: { timeoutMs: 400, concurrency: 4, maxPending: 3, maxWaitMs: 60_000, retryBaseMs: 20 } });
const receivers: Receiver[] = [];
t.teardown(async () => {
  await h.cleanup();
  for (const r of receivers) await r.close();
});
const receiver = async (...args: Parameters<typeof startReceiver>) => {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
};
const index = (utteranceId: string) => Number(utteranceId.split(':').pop()) / 8000;

t.test('hanging receiver: timeouts are recorded and the oldest waiting messages are dropped first', async (t) => {
  const target = await receiver(null, () => 'hang');
  const tenant = await h.tenant(target.url);
  const call = callSid();
  // One call: message 1 goes out and hangs; 2..6 wait behind it (per-call order), and with
  // room for 3 waiting, 2 and 3 (the oldest) are dropped when 5 and 6 arrive.
  for (let i = 1; i <= 6; i++) await h.utter(tenant, call, i);
  const finals = await h.finals(tenant, 6);
  const byIndex = new Map(finals.map((d) => [index(d.utteranceId), d]));
  t.same(
    finals.filter((d) => d.outcome === 'dropped').map((d) => index(d.utteranceId)),
    [2, 3],
    'the two oldest waiting messages were dropped, in age order',
  );
  t.match(byIndex.get(2)?.error, /backlog full .* oldest dropped first/);
  t.equal(byIndex.get(2)?.attempt, 0, 'never sent');
  for (const i of [1, 4, 5, 6]) {
    t.equal(byIndex.get(i)?.outcome, 'timeout', `message ${i} was sent and timed out`);
    t.match(byIndex.get(i)?.error, /no complete response within the timeout/);
  }
  t.same(
    target.received.map((r) => (r.body as { autotranscribeResponse: { start: number } }).autotranscribeResponse.start / 1000),
    [1, 4, 5, 6],
    'the receiver saw the kept ones, in order',
  );
});

t.test('messages that waited past the wait limit are dropped oldest first, the fresh one is sent', async (t) => {
  const h2 = await webhookHarness({ limits: { timeoutMs: 600, concurrency: 1, maxPending: 100, maxWaitMs: 300 } });
  t.teardown(() => h2.cleanup());
  let hang = true;
  const target = await receiver(null, () => (hang ? 'hang' : 200));
  const tenant = await h2.tenant(target.url);
  const call = callSid();
  for (let i = 1; i <= 3; i++) await h2.utter(tenant, call, i);
  // 2 and 3 wait behind 1 (hanging, times out); by then they are stale and dropped, 2 first.
  await h2.finals(tenant, 3);
  hang = false;
  await h2.utter(tenant, call, 4);
  const finals = await h2.finals(tenant, 4);
  const outcomeOf = (i: number) => finals.find((d) => index(d.utteranceId) === i)?.outcome;
  t.same([1, 2, 3, 4].map(outcomeOf), ['timeout', 'dropped', 'dropped', 'delivered']);
  t.match(finals.find((d) => index(d.utteranceId) === 2)?.error, /waited over 300 ms/);
  const dropOrder = finals.filter((d) => d.outcome === 'dropped').map((d) => index(d.utteranceId));
  t.same(dropOrder, [2, 3], 'oldest first');
  t.equal(finals.find((d) => index(d.utteranceId) === 4)?.outcome, 'delivered');
});

t.test('a 500 answer drops that message (no retry by default) and the next one is sent', async (t) => {
  const target = await receiver(null, (r) =>
    (r.body as { autotranscribeResponse: { start: number } }).autotranscribeResponse.start === 1000 ? 500 : 200,
  );
  const tenant = await h.tenant(target.url);
  const call = callSid();
  await h.utter(tenant, call, 1);
  await h.utter(tenant, call, 2);
  const finals = await h.finals(tenant, 2);
  t.same(
    finals.map((d) => [index(d.utteranceId), d.outcome, d.httpStatus, d.attempt]),
    [
      [1, 'http_error', 500, 1],
      [2, 'delivered', 200, 1],
    ],
  );
  t.match(finals[0]?.error, /target answered 500: refused with 500/);
  t.equal(target.received.length, 2, 'one request each: nothing retried');
});

t.test('opt-in retries: a 500 then success is delivered on the second attempt; each attempt is recorded', async (t) => {
  let failures = 2;
  const target = await receiver(null, () => (failures-- > 0 ? 503 : 200));
  const tenant = await h.tenant(target.url, { retries: 3 });
  await h.utter(tenant, callSid(), 1);
  await waitFor('the delivered attempt', () => h.deliveries.some((d) => d.tenantId === tenant && d.outcome === 'delivered'));
  const attempts = h.deliveries.filter((d) => d.tenantId === tenant);
  t.same(
    attempts.map((d) => [d.outcome, d.httpStatus, d.attempt]),
    [
      ['http_error', 503, 1],
      ['http_error', 503, 2],
      ['delivered', 200, 3],
    ],
  );
});

t.test('opt-in retries are bounded, and a 4xx is never retried', async (t) => {
  const failing = await receiver(null, () => 500);
  const tenant = await h.tenant(failing.url, { retries: 2 });
  await h.utter(tenant, callSid(), 1);
  await waitFor('three attempts', () => h.deliveries.filter((d) => d.tenantId === tenant).length >= 3);
  await sleep(200);
  t.same(
    h.deliveries.filter((d) => d.tenantId === tenant).map((d) => d.attempt),
    [1, 2, 3],
    'first try + 2 retries, then it stops',
  );
  const refusing = await receiver(null, () => 400);
  const other = await h.tenant(refusing.url, { retries: 2 });
  await h.utter(other, callSid(), 1);
  await h.finals(other, 1);
  await sleep(200);
  t.equal(refusing.received.length, 1, 'a 400 is final');
});

t.test('a receiver that is down: connection error recorded for each message', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const tenant = await h.tenant(`http://127.0.0.1:${port}/hook`);
  const call = callSid();
  await h.utter(tenant, call, 1);
  await h.utter(tenant, call, 2);
  const finals = await h.finals(tenant, 2);
  t.same(
    finals.map((d) => d.outcome),
    ['connection_error', 'connection_error'],
  );
  t.match(finals[0]?.error, /ECONNREFUSED/);
});

t.test('per-call order holds under concurrency (many calls, random receiver delays)', async (t) => {
  const target = await receiver(null, async () => {
    await sleep(Math.random() * 15);
    return 200;
  });
  const h3 = await webhookHarness({ limits: { concurrency: 8, maxPending: 1000 } });
  t.teardown(() => h3.cleanup());
  const tenant = await h3.tenant(target.url);
  const calls = Array.from({ length: 12 }, () => callSid());
  const perCall = 10;
  await Promise.all(
    calls.map(async (c) => {
      for (let i = 1; i <= perCall; i++) await h3.utter(tenant, c, i);
    }),
  );
  await h3.finals(tenant, calls.length * perCall);
  t.ok(h3.deliveries.every((d) => d.outcome === 'delivered'));
  for (const c of calls) {
    const seen = target.received
      .filter((r) => (r.body as { externalConversationId: string }).externalConversationId === c)
      .map((r) => (r.body as { autotranscribeResponse: { start: number } }).autotranscribeResponse.start / 1000);
    t.same(
      seen,
      Array.from({ length: perCall }, (_, i) => i + 1),
      `call ${c.slice(0, 8)} in order`,
    );
  }
  t.equal(target.received.length, calls.length * perCall, 'each message sent once');
});

t.test('a hanging tenant does not delay another tenant', async (t) => {
  // A long timeout: the stuck tenant's requests hang until its receiver is closed.
  const h4 = await webhookHarness({ limits: { timeoutMs: 60_000, concurrency: 4, maxPending: 100 } });
  t.teardown(() => h4.cleanup());
  const stuck = await startReceiver(null, () => 'hang');
  const healthy = await receiver(null, () => 200);
  const slowTenant = await h4.tenant(stuck.url);
  const fastTenant = await h4.tenant(healthy.url);
  for (let i = 1; i <= 6; i++) await h4.utter(slowTenant, callSid(), i); // 4 hanging, 2 waiting
  await waitFor('the stuck tenant has its connections hanging', () => stuck.received.length === 4);
  const call = callSid();
  for (let i = 1; i <= 5; i++) await h4.utter(fastTenant, call, i);
  const fast = await h4.finals(fastTenant, 5);
  t.ok(
    fast.every((d) => d.outcome === 'delivered'),
    'the healthy tenant got everything',
  );
  t.equal(h4.deliveries.filter((d) => d.tenantId === slowTenant).length, 0, 'while the stuck tenant had no outcome yet');
  await stuck.close(); // its hanging requests now fail
  const slow = await h4.finals(slowTenant, 6);
  t.equal(slow.length, 6, 'and the stuck tenant gets its outcomes once its target gives up');
});

t.test('an app without a webhook is skipped, and counted', async (t) => {
  const before =
    (await h.runtime.metrics.getSingleMetric('earshot_webhook_skipped_total')?.get())?.values.find((v) => v.labels.reason === 'unknown_app')
      ?.value ?? 0;
  await h.utter('app_no_such_tenant', callSid(), 1);
  await waitFor('the skip counted', async () => {
    const now =
      (await h.runtime.metrics.getSingleMetric('earshot_webhook_skipped_total')?.get())?.values.find(
        (v) => v.labels.reason === 'unknown_app',
      )?.value ?? 0;
    return now === before + 1;
  });
  t.equal(h.deliveries.filter((d) => d.tenantId === 'app_no_such_tenant').length, 0);
});

t.test('every outcome is counted in metrics', async (t) => {
  const text = await h.runtime.metrics.metrics();
  for (const outcome of ['delivered', 'http_error', 'timeout', 'dropped', 'connection_error'])
    t.match(text, new RegExp(`earshot_webhook_deliveries_total\\{[^}]*outcome="${outcome}"[^}]*\\} [1-9]`), outcome);
  t.match(text, /earshot_webhook_end_of_speech_to_delivered_seconds_count\{[^}]*\} [1-9]/);
});
