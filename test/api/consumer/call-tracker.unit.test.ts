import t, { type Test } from 'tap';
import { apiMetrics } from '../../../apps/api/src/api-metrics.js';
import { CALL_IDLE_EVICTION_MS, CallTracker } from '../../../apps/api/src/consumer/call-tracker.js';
import type { CallEvent } from '../../../apps/shared/src/events.js';
import type { EventLog } from '../../../apps/shared/src/ports/event-log.port.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import { startRequest } from '../../support/fixtures.js';
import { testRuntime } from '../../support/runtime.js';
import { waitFor } from '../../support/wait.js';
import { newCallSid } from '../support/api-harness.js';

/** The API's follower of earshot.call-events.v1 on the embedded log. */
const startEvent = (callSid: string, tenantId: string, occurredAtMs = Date.now()): CallEvent => ({
  eventId: `start-${callSid}-${occurredAtMs}`,
  callSid,
  tenantId,
  occurredAtMs,
  type: 'TranscriptionStartRequested',
  data: startRequest({
    requestId: 'r',
    customerId: 'c',
    agentId: 'a',
    customerStreamId: '00000000-0000-4000-8000-000000000001',
    agentStreamId: '00000000-0000-4000-8000-000000000002',
  }),
});
const audioEvent = (callSid: string, tenantId: string, i: number): CallEvent => ({
  eventId: `audio-${callSid}-${i}`,
  callSid,
  tenantId,
  occurredAtMs: Date.now(),
  type: 'AudioChunkReceived',
  data: {
    streamSid: 'MZ1',
    track: 'inbound',
    firstChunk: i * 5,
    lastChunk: i * 5 + 4,
    timestampMs: i * 100,
    durationMs: 100,
    payload: Buffer.alloc(800),
  },
});

async function setup(t: Test) {
  const runtime = await testRuntime();
  t.teardown(() => runtime.cleanup());
  return runtime;
}

t.test('start resolves only once everything already in the log is applied; audio is skipped', async (t) => {
  const runtime = await setup(t);
  const calls = Array.from({ length: 20 }, () => newCallSid());
  for (const callSid of calls) {
    await runtime.eventLog.produce(TOPICS.callEvents, [
      { key: callSid, value: startEvent(callSid, 'app_a') },
      ...Array.from({ length: 50 }, (_, i) => ({ key: callSid, value: audioEvent(callSid, 'app_a', i) })),
    ]);
  }
  const tracker = new CallTracker({ log: runtime.eventLog, logger: runtime.logger, metrics: apiMetrics(runtime.metrics) });
  t.teardown(() => tracker.stop());
  t.notOk(tracker.ready);
  await tracker.start();
  t.ok(tracker.ready);
  t.equal(tracker.size, 20, 'one entry per call, none for audio');
  for (const callSid of calls) t.match(tracker.state(callSid), { tenantId: 'app_a', started: true });

  const later = newCallSid();
  await runtime.eventLog.produce(TOPICS.callEvents, [{ key: later, value: startEvent(later, 'app_b') }]);
  await waitFor('a record written after start', () => tracker.state(later)?.tenantId === 'app_b');
});

t.test('a partition whose records expired still counts as read once it stays quiet', async (t) => {
  const runtime = await setup(t);
  // The log claims partition 0 ends at offset 5, but nothing is left to read (retention took it).
  const log: EventLog = Object.assign(Object.create(runtime.eventLog) as EventLog, {
    endOffsets: async (topic: string) => (await runtime.eventLog.endOffsets(topic)).map((end, i) => (i === 0 ? end + 5 : end)),
  });
  const tracker = new CallTracker({ log, logger: runtime.logger, metrics: apiMetrics(runtime.metrics), quietMs: 300 });
  t.teardown(() => tracker.stop());
  const started = Date.now();
  await tracker.start();
  const took = Date.now() - started;
  t.ok(took >= 300 && took < 5000, `ready after the quiet period (${took} ms)`);
});

t.test('calls idle for more than 6 h are forgotten', async (t) => {
  const runtime = await setup(t);
  let now = Date.now();
  const tracker = new CallTracker({
    log: runtime.eventLog,
    logger: runtime.logger,
    metrics: apiMetrics(runtime.metrics),
    clock: () => now,
  });
  t.teardown(() => tracker.stop());
  await tracker.start();
  const [old, fresh] = [newCallSid(), newCallSid()];
  tracker.accepted(startEvent(old, 'app_a', now));
  await runtime.eventLog.produce(TOPICS.callEvents, [{ key: old, value: startEvent(old, 'app_a', now) }]);
  await waitFor('the call read back', () => tracker.size === 1 && tracker.state(old)?.started === true);
  now += CALL_IDLE_EVICTION_MS - 1000;
  tracker.accepted(startEvent(fresh, 'app_a', now));
  await runtime.eventLog.produce(TOPICS.callEvents, [{ key: fresh, value: startEvent(fresh, 'app_a', now) }]);
  await waitFor('the second call read back', () => tracker.state(fresh)?.started === true);
  now += 2000;
  t.equal(tracker.state(old), undefined, 'idle past 6 h: unknown again');
  tracker.sweep();
  t.equal(tracker.size, 1, 'swept from memory');
  t.ok(tracker.state(fresh), 'the active call stays');
});

t.test('commands for one call run one after the other', async (t) => {
  const runtime = await setup(t);
  const tracker = new CallTracker({ log: runtime.eventLog, logger: runtime.logger, metrics: apiMetrics(runtime.metrics) });
  t.teardown(() => tracker.stop());
  const order: string[] = [];
  const slow = (name: string, ms: number) => async () => {
    order.push(`${name}:in`);
    await new Promise((r) => setTimeout(r, ms));
    order.push(`${name}:out`);
    if (name === 'b') throw new Error('b fails');
    return name;
  };
  const sid = newCallSid();
  const results = await Promise.allSettled([
    tracker.exclusive(sid, slow('a', 30)),
    tracker.exclusive(sid, slow('b', 10)),
    tracker.exclusive(sid, slow('c', 1)),
    tracker.exclusive(newCallSid(), slow('other', 1)),
  ]);
  t.same(
    order.filter((o) => !o.startsWith('other')),
    ['a:in', 'a:out', 'b:in', 'b:out', 'c:in', 'c:out'],
  );
  t.ok(order.indexOf('other:out') < order.indexOf('a:out'), 'another call does not wait');
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    'a failure does not block the next command',
  );
});

t.test('a command the log hands back before the API records it is applied once (regression: stop then 200 instead of 409)', async (t) => {
  const runtime = await setup(t);
  const tracker = new CallTracker({ log: runtime.eventLog, logger: runtime.logger, metrics: apiMetrics(runtime.metrics) });
  t.teardown(() => tracker.stop());
  await tracker.start();
  const callSid = newCallSid();
  const start = startEvent(callSid, 'app_a');
  await runtime.eventLog.produce(TOPICS.callEvents, [{ key: callSid, value: start }]);
  await waitFor('the start read back first', () => tracker.state(callSid)?.started === true);
  tracker.accepted(start); // the API records its command after the log already handed it back
  const stop: CallEvent = {
    eventId: `stop-${callSid}`,
    callSid,
    tenantId: 'app_a',
    occurredAtMs: Date.now(),
    type: 'TranscriptionStopRequested',
    data: { requestId: 'r2' },
  };
  tracker.accepted(stop); // this one is recorded before the log hands it back, as usual
  await runtime.eventLog.produce(TOPICS.callEvents, [{ key: callSid, value: stop }]);
  await waitFor('the stop read back', () => tracker.state(callSid)?.started === false);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(tracker.state(callSid)?.started, false, 'stopped, not started again by a stale pending start');
});
