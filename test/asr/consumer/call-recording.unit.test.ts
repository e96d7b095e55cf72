import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { CallTranscriber } from '../../../apps/asr/src/consumer/call-transcriber.js';
import { DEFAULT_RULES } from '../../../apps/asr/src/domain/redaction.js';
import { createLocalRecordingStore } from '../../../apps/shared/src/adapters/local-recording-store.js';
import { mulawToPcm16 } from '../../../apps/shared/src/audio/mulaw.js';
import type { CallEventPayload, TranscriptionStartRequested } from '../../../apps/shared/src/events.js';
import type { RecordingInfo, RecordingStore } from '../../../apps/shared/src/ports/recording-store.port.js';
import { startRequest } from '../../support/fixtures.js';
import { audioChunk, callEventMaker, startCommand, stopCommand, streamEnded, tone } from '../support/call-events.js';
import { fakeEngine } from '../support/fake-engine.js';

// SPEC §6 audioRecordingAllowed in the asr consumer: per session, a stereo WAV (customer left,
// agent right) on the media-stream clock, written to the RecordingStore when the session closes.
const CALL = 'CA0123456789abcdef0123456789abcdef';
const TENANT = 'app_rec';
const C1 = '11111111-1111-4111-8111-111111111111';
const A1 = '22222222-2222-4222-8222-222222222222';

function harness(t: Test, options: { maxDurationS?: number } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'earshot-rec-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = createLocalRecordingStore(root);
  const outcomes: string[] = [];
  const errors: unknown[] = [];
  const transcriber = new CallTranscriber(CALL, TENANT, 0, {
    engine: fakeEngine(),
    emit: { utterance: async () => {}, session: async () => {} },
    redactionRules: () => DEFAULT_RULES,
    now: () => 1_700_000_000_000,
    onError: (e) => errors.push(e),
    recordings: { store, maxDurationS: options.maxDurationS ?? 3600, written: (o) => outcomes.push(o) },
  });
  let offset = 0;
  const { event } = callEventMaker('e', TENANT);
  // Received in the order sent: occurredAtMs grows with the offset, as it does from one ingest node.
  const send = (payload: CallEventPayload) => transcriber.handle(event(CALL, offset, payload), offset++);
  const startData = (over: Partial<TranscriptionStartRequested> = {}): TranscriptionStartRequested =>
    startRequest({ customerId: 'cust-1', audioRecordingAllowed: true, customerStreamId: C1, agentStreamId: A1, ...over });
  const start = (over: Partial<TranscriptionStartRequested> = {}) => send(startCommand(startData(over)));
  // The stream goes on after a stop: the next chunk ingest received after it completes the stop.
  const stop = async () => {
    await send(stopCommand('req-stop'));
    await send(audioChunk(0, tone(0xff, 20)));
  };
  const audio = (track: 'inbound' | 'outbound', ms: number, payload: Uint8Array, streamSid = 'MZ1') =>
    send(audioChunk(ms, Buffer.from(payload), { track, streamSid }));
  return { root, store, transcriber, outcomes, errors, send, start, startData, stop, audio };
}

/** Distinct, non-silent mu-law bytes: any misplaced sample shows. */
function noise(ms: number, seed: number): Uint8Array {
  const out = new Uint8Array(ms * 8);
  let x = seed;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) % 0x7f; // 0x00..0x7e: never mu-law silence
  }
  return out;
}

/** Media timeline of one side: bytes placed at ms × 8, mu-law silence elsewhere, from `fromMs` to `toMs`. */
function timeline(fromMs: number, toMs: number, parts: readonly [ms: number, bytes: Uint8Array][]): Int16Array {
  const mulaw = new Uint8Array((toMs - fromMs) * 8).fill(0xff);
  for (const [ms, bytes] of parts) mulaw.set(bytes, (ms - fromMs) * 8);
  return mulawToPcm16(mulaw);
}

function channels(wav: Buffer): { rate: number; count: number; bits: number; left: Int16Array; right: Int16Array } {
  const count = wav.readUInt16LE(22);
  const frames = wav.readUInt32LE(40) / (2 * count);
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = wav.readInt16LE(44 + i * 4);
    right[i] = wav.readInt16LE(46 + i * 4);
  }
  return { rate: wav.readUInt32LE(24), count, bits: wav.readUInt16LE(34), left, right };
}

async function download(store: RecordingStore, info: RecordingInfo | undefined): Promise<Buffer> {
  const found = await store.get(TENANT, info?.recordingId ?? 'none');
  if (!found) throw new Error('recording not found');
  const chunks: Buffer[] = [];
  for await (const chunk of found.audio) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sameSamples = (t: Test, got: Int16Array, want: Int16Array, what: string) => {
  t.equal(got.length, want.length, `${what}: ${want.length} samples`);
  const firstDiff = got.findIndex((v, i) => v !== want[i]);
  t.equal(firstDiff, -1, `${what}: sample-exact${firstDiff >= 0 ? ` (first difference at sample ${firstDiff})` : ''}`);
};

t.test('audioRecordingAllowed: customer left, agent right, sample-exact on the media clock with silence gaps', async (t) => {
  const h = harness(t);
  const before = noise(200, 1);
  const c1 = noise(300, 2);
  const c2 = noise(200, 3);
  const a1 = noise(500, 4);
  const after = noise(200, 5);
  await h.audio('inbound', 0, before); // IVR before start: never recorded
  await h.start();
  await h.audio('inbound', 1000, c1); // customer 1000..1300
  await h.audio('outbound', 1200, a1); // agent 1200..1700 (customer silent 1300..1600: no chunks at all)
  await h.audio('inbound', 1600, c2); // customer 1600..1800
  await h.stop();
  await h.audio('inbound', 2000, after); // after stop: never recorded
  await h.audio('outbound', 2000, after);
  t.same(h.errors, []);
  t.same(h.outcomes, ['written']);

  const listed = await h.store.list(TENANT, CALL);
  t.equal(listed.length, 1, 'one recording for the session');
  const info = listed[0];
  t.match(info, {
    recordingId: `${CALL}_${C1}`,
    callSid: CALL,
    customerStreamId: C1,
    agentStreamId: A1,
    mediaStartMs: 1000,
    durationMs: 800,
    complete: true,
    truncated: false,
    createdAtMs: 1_700_000_000_000,
  });
  const wav = await download(h.store, info);
  t.equal(info?.bytes, wav.length);
  t.equal(wav.length, 44 + 800 * 8 * 4, '8 kHz, 2 channels, 16 bit, 800 ms');
  const { rate, count, bits, left, right } = channels(wav);
  t.same([rate, count, bits], [8000, 2, 16]);
  sameSamples(
    t,
    left,
    timeline(1000, 1800, [
      [1000, c1],
      [1600, c2],
    ]),
    'left = customer',
  );
  sameSamples(t, right, timeline(1000, 1800, [[1200, a1]]), 'right = agent');
  t.equal(left.subarray(300 * 8, 600 * 8).every((v) => v === 0) && right.subarray(0, 200 * 8).every((v) => v === 0), true, 'silence gaps');
});

t.test('the track map decides the channel: inbound as agent goes right', async (t) => {
  const h = harness(t);
  const caller = noise(100, 6);
  const callee = noise(100, 7);
  await h.start({ inboundRole: 'agent', outboundRole: 'customer' });
  await h.audio('inbound', 0, caller);
  await h.audio('outbound', 0, callee);
  await h.stop();
  const { left, right } = channels(await download(h.store, (await h.store.list(TENANT, CALL))[0]));
  sameSamples(t, left, mulawToPcm16(callee), 'left = customer (outbound)');
  sameSamples(t, right, mulawToPcm16(caller), 'right = agent (inbound)');
});

t.test('audioRecordingAllowed false (the default) persists no audio at all', async (t) => {
  const h = harness(t);
  await h.start({ audioRecordingAllowed: false });
  await h.audio('inbound', 0, noise(500, 8));
  await h.audio('outbound', 0, noise(500, 9));
  await h.stop();
  t.same(await h.store.list(TENANT, CALL), []);
  t.same(readdirSync(h.root), [], 'nothing written under the recordings directory');
  t.same(h.outcomes, []);
});

t.test('one recording per session; Twilio stop closes the session and writes it', async (t) => {
  const h = harness(t);
  const s1 = noise(200, 10);
  const s2 = noise(300, 11);
  await h.start();
  await h.audio('inbound', 0, s1);
  await h.stop();
  await h.audio('inbound', 200, noise(1000, 12)); // on hold: not recorded
  const C2 = '33333333-3333-4333-8333-333333333333';
  await h.start({ requestId: 'req-2', customerStreamId: C2, agentStreamId: '44444444-4444-4444-8444-444444444444' });
  await h.audio('outbound', 1200, s2);
  await h.send(streamEnded('MZ1', 'stopped'));
  t.notOk(h.transcriber.started, 'Twilio stop closed the session');
  const listed = await h.store.list(TENANT, CALL);
  t.same(
    listed.map((r) => [r.customerStreamId, r.mediaStartMs, r.durationMs]),
    [
      [C1, 0, 200],
      [C2, 1200, 300],
    ],
  );
  const second = channels(await download(h.store, listed[1]));
  sameSamples(t, second.right, mulawToPcm16(s2), 'second session: agent only');
  t.ok(
    second.left.every((v) => v === 0),
    'customer silent in the second session',
  );
});

t.test('a session without audio writes nothing; a restored session is marked incomplete', async (t) => {
  const h = harness(t);
  await h.start();
  await h.stop();
  t.same(h.outcomes, ['empty']);
  t.same(await h.store.list(TENANT, CALL), []);

  h.transcriber.restore(h.startData(), 0, 0); // taken over after a crash: earlier audio is not here
  await h.audio('inbound', 5000, noise(100, 13));
  await h.stop();
  t.match(await h.store.list(TENANT, CALL), [{ complete: false, mediaStartMs: 5000, durationMs: 100 }]);
});

t.test('a replay of a session already closed and recorded keeps the first, complete recording', async (t) => {
  const h = harness(t);
  const whole = noise(1000, 19);
  await h.start();
  await h.audio('inbound', 0, whole);
  await h.stop(); // recorded; then the process dies before committing past the stop
  const [first] = await h.store.list(TENANT, CALL);
  h.transcriber.restore(h.startData(), 0, 0); // the new owner restores the session and replays its tail
  await h.audio('inbound', 800, whole.subarray(6400));
  await h.stop();
  t.same(h.outcomes, ['written', 'kept']);
  t.same(await h.store.list(TENANT, CALL), [first], 'not replaced by the partial replay');
});

t.test('a recording is capped at the maximum duration', async (t) => {
  const h = harness(t, { maxDurationS: 1 });
  const first = noise(800, 14);
  await h.start();
  await h.audio('inbound', 0, first);
  await h.audio('inbound', 800, noise(800, 15));
  await h.audio('outbound', 5000, noise(100, 16)); // far past the cap: dropped
  await h.stop();
  t.same(h.outcomes, ['truncated']);
  const [info] = await h.store.list(TENANT, CALL);
  t.match(info, { durationMs: 1000, truncated: true });
  const { left, right } = channels(await download(h.store, info));
  t.equal(left.length, 8000);
  sameSamples(t, left.subarray(0, 6400), mulawToPcm16(first), 'kept audio unchanged');
  t.ok(
    right.every((v) => v === 0),
    'audio past the cap dropped',
  );
});

t.test('a new media stream in the session continues where the recording ends', async (t) => {
  const h = harness(t);
  const old = noise(300, 17);
  const fresh = noise(200, 18);
  await h.start();
  await h.audio('inbound', 1000, old);
  await h.audio('inbound', 0, fresh, 'MZ2'); // Twilio restarted the stream: timestamps from 0
  await h.stop();
  const [info] = await h.store.list(TENANT, CALL);
  t.match(info, { mediaStartMs: 1000, durationMs: 500 });
  const { left } = channels(await download(h.store, info));
  sameSamples(t, left, mulawToPcm16(Buffer.concat([old, fresh])), 'second stream appended');
});

t.test('a store failure is reported and the session still closes', async (t) => {
  const errors: unknown[] = [];
  const sessions: string[] = [];
  const failing: RecordingStore = {
    put: async () => {
      throw new Error('disk full');
    },
    list: async () => [],
    get: async () => null,
  };
  const transcriber = new CallTranscriber(CALL, TENANT, 0, {
    engine: fakeEngine(),
    emit: { utterance: async () => {}, session: async (e) => void sessions.push(e.type) },
    redactionRules: () => DEFAULT_RULES,
    now: () => 0,
    onError: (e, context) => errors.push([(e as Error).message, context.stage]),
    recordings: { store: failing, maxDurationS: 60 },
  });
  const h = harness(t);
  const { event } = callEventMaker('e', TENANT);
  const events = [startCommand(h.startData()), audioChunk(0, tone(1)), stopCommand('r'), streamEnded('MZ1', 'closed_without_stop')];
  for (const [offset, payload] of events.entries()) await transcriber.handle(event(CALL, 0, payload), offset);
  t.same(errors, [['disk full', 'recording']]);
  t.same(sessions, ['TranscriptionSessionOpened', 'TranscriptionSessionClosed']);
});
