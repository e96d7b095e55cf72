import t from 'tap';
import {
  accept,
  type CallState,
  current,
  decideStart,
  decideStop,
  EMPTY_CALL,
  evolve,
  expirePending,
  isIdle,
  observe,
  type TrackedCall,
} from '../../../apps/api/src/domain/call-state.js';
import type { CallEvent, CallEventPayload } from '../../../apps/shared/src/events.js';
import { streamStarted as streamStartedPayload } from '../../asr/support/call-events.js';
import { startRequest } from '../../support/fixtures.js';

/** Given/when/then over the pure call-state projection: no log, no clock. */
const SID = 'CA00000000000000000000000000000001';
let n = 0;
const event = (tenantId: string, payload: CallEventPayload, at = 1000 + n): CallEvent =>
  ({ eventId: `e${++n}`, callSid: SID, tenantId, occurredAtMs: at, ...payload }) as CallEvent;
const streamStarted = (tenant: string, streamSid = 'MZ1') => event(tenant, streamStartedPayload(streamSid));
const streamEnded = (tenant: string, streamSid = 'MZ1') =>
  event(tenant, { type: 'StreamEnded', data: { streamSid, reason: 'stopped', detail: null, framesReceived: 1, framesDropped: 0 } });
const start = (tenant: string, id = 'c1', at?: number) =>
  event(
    tenant,
    {
      type: 'TranscriptionStartRequested',
      data: startRequest({
        requestId: 'r',
        customerId: 'c',
        agentId: 'a',
        customerStreamId: `${id}-customer`,
        agentStreamId: `${id}-agent`,
      }),
    },
    at,
  );
const stop = (tenant: string) => event(tenant, { type: 'TranscriptionStopRequested', data: { requestId: 'r' } });
const audio = (tenant: string) =>
  event(tenant, {
    type: 'AudioChunkReceived',
    data: { streamSid: 'MZ1', track: 'inbound', firstChunk: 1, lastChunk: 5, timestampMs: 0, durationMs: 100, payload: Buffer.alloc(800) },
  });

const given = (...events: CallEvent[]): CallState | undefined => events.reduce(evolve, undefined as CallState | undefined);

t.test('the first tenant seen owns the call; another tenant is told not found', async (t) => {
  const state = given(streamStarted('A'));
  t.match(state, { tenantId: 'A', streamConnected: true, started: false });
  t.same(decideStart(state, 'B'), { kind: 'rejected', reason: 'not_found' });
  t.same(decideStop(state, 'B'), { kind: 'rejected', reason: 'not_found' });
  t.same(decideStart(state, 'A'), { kind: 'accepted' });
  t.equal(evolve(state, start('B')), state, "another tenant's start changes nothing");
});

t.test('start before the stream is accepted; start twice is already_started; stop after start names its streams', async (t) => {
  t.same(decideStart(undefined, 'A'), { kind: 'accepted' }, 'an unknown call may be started');
  t.same(decideStop(undefined, 'A'), { kind: 'rejected', reason: 'not_found' });
  const started = given(start('A', 'one'), streamStarted('A'));
  t.same(decideStart(started, 'A'), { kind: 'rejected', reason: 'already_started' });
  t.same(decideStop(started, 'A'), { kind: 'accepted', customerStreamId: 'one-customer', agentStreamId: 'one-agent' });
  const stopped = given(start('A', 'one'), stop('A'));
  t.same(decideStop(stopped, 'A'), { kind: 'rejected', reason: 'not_started' });
  t.same(decideStart(stopped, 'A'), { kind: 'accepted' }, 'start after stop resumes');
  t.same(decideStop(given(streamStarted('A')), 'A'), { kind: 'rejected', reason: 'not_started' });
});

t.test('stream lifecycle: a replaced stream ending late does not disconnect its successor', async (t) => {
  t.match(given(streamStarted('A', 'MZ1'), streamEnded('A', 'MZ1')), { streamConnected: false });
  t.match(given(streamStarted('A', 'MZ1'), streamStarted('A', 'MZ2'), streamEnded('A', 'MZ1')), {
    streamConnected: true,
    streamSid: 'MZ2',
  });
  t.match(given(start('A'), streamStarted('A'), streamEnded('A')), { started: true }, 'the end of the stream does not stop transcription');
});

t.test('media events change nothing and create no call', async (t) => {
  t.equal(given(audio('A')), undefined);
  const state = given(streamStarted('A'));
  t.equal(evolve(state, audio('A')), state);
});

t.test('own commands apply at once, and the log, when it hands them back, is not applied twice', async (t) => {
  const mine = start('A', 'mine');
  let call: TrackedCall = accept(EMPTY_CALL, mine);
  t.match(current(call), { started: true, customerStreamId: 'mine-customer' }, 'seen before the log hands it back');
  call = observe(call, mine);
  t.same(call.pending, [], 'read back: no longer pending');
  t.match(current(call), { started: true, customerStreamId: 'mine-customer' });
  call = observe(call, stop('A'));
  t.match(current(call), { started: false });
});

t.test("the log's order wins over the order this node accepted commands in", async (t) => {
  // Another node's start and stop sit before our start in the partition, but reach us after ours was accepted.
  const theirStart = start('A', 'theirs');
  const theirStop = stop('A');
  const ourStart = start('A', 'ours');
  let call = accept(EMPTY_CALL, ourStart);
  call = observe(call, theirStart);
  call = observe(call, theirStop);
  t.match(current(call), { started: true, customerStreamId: 'ours-customer' }, 'their earlier stop does not undo our later start');
  call = observe(call, ourStart);
  t.match(current(call), { started: true, customerStreamId: 'ours-customer' }, 'and reading ours back changes nothing');
  t.same(call.pending, []);
});

t.test('idle calls and stale own commands expire', async (t) => {
  const call = observe(EMPTY_CALL, start('A', 'x'));
  const at = (current(call) as CallState).lastEventAtMs;
  t.notOk(isIdle(call, at + 1000, 6 * 3_600_000));
  t.ok(isIdle(call, at + 6 * 3_600_000 + 1, 6 * 3_600_000));
  const pending = accept(EMPTY_CALL, start('A', 'y', 5000));
  t.equal(expirePending(pending, 5000 + 60_000, 600_000), pending, 'recent: kept');
  t.same(expirePending(pending, 5000 + 600_001, 600_000).pending, [], 'old: dropped');
});
