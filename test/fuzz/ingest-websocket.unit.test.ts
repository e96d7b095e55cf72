import fc from 'fast-check';
import t from 'tap';
import { DROP_REASONS, type DropReason } from '../../apps/ingest/src/metrics.js';
import {
  audioOf,
  eventsOf,
  expectedAudio,
  FRAME,
  fileHarness,
  frameBytes,
  range,
  TwilioStream,
  timestampOf,
  waitForEnd,
} from '../ingest/support.js';

/**
 * Issue 9, WebSocket fuzzing: generated and mutated Twilio messages against a real ingest
 * server (uWebSockets.js, in this process, embedded log), on several sockets at once, while a
 * well-behaved stream on another socket keeps sending audio. A model predicts, for every
 * message, whether it is accepted or dropped and under which reason; the test then checks
 * the process is up, every socket's accepted audio arrived intact and in order, each
 * StreamEnded counts what its socket sent, and `earshot_ingest_frames_dropped_total{reason}`
 * grew by exactly the predicted rejections. test/ingest/bad-input.unit.test.ts has one named
 * test per case; this file throws generated inputs at the same rules.
 *
 * `FUZZ_SEED` and `FUZZ_RUNS` reproduce or widen a run (fast-check prints the seed on failure).
 */

type Track = 'inbound' | 'outbound';
const TRACKS: readonly Track[] = ['inbound', 'outbound'];

/** What one generated step sends on its socket; the model turns it into a message and a verdict. */
type Action =
  | { kind: 'frame'; track: Track; gap: number }
  | { kind: 'replay'; track: Track; back: number }
  | { kind: 'late'; track: Track }
  | { kind: 'badChunk'; track: Track; field: 'chunk' | 'timestamp'; value: unknown }
  | { kind: 'badTrack'; value: unknown }
  | { kind: 'badMediaObject'; value: unknown }
  | { kind: 'badPayload'; track: Track; payload: unknown; reason: 'invalid_base64' | 'payload_size' }
  | { kind: 'text'; text: string; reason: 'invalid_json' | 'invalid_message' }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'unknownEvent'; value: unknown }
  | { kind: 'dtmf'; track: unknown; digit: unknown }
  | { kind: 'harmless'; event: 'mark' | 'connected' }
  | { kind: 'repeatedStart' };

interface Step {
  readonly socket: number;
  readonly action: Action;
}

interface Scenario {
  readonly sockets: number;
  readonly steps: readonly Step[];
  /** Sockets that end with a frame over 64 KiB instead of `stop`. */
  readonly oversized: readonly boolean[];
}

// ---- generators --------------------------------------------------------------------------

/** Objects whose keys shadow what JavaScript calls implicitly (a `String(value)` on them throws). */
const hostileObject = fc.constantFrom<unknown>(
  { toString: 1 },
  { valueOf: 'x', toString: null },
  { __proto__: { a: 1 } },
  { constructor: 'x' },
  { toJSON: 1 },
  [[[]]],
);
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileObject);
const track = fc.constantFrom<Track>(...TRACKS);

/** Not a non-negative safe integer nor a string of 1-15 digits: huge, negative, fractional, other types. */
const badCount = fc.oneof(
  fc.integer({ max: -1 }),
  fc.constantFrom<unknown>(2 ** 53, 1e21, Number.MAX_VALUE, 1.5, -0.5, '1e3', '-5', '', ' 5', '0x10', '١٢', '1_000', null, true, {}, []),
  fc.bigInt({ min: 10n ** 15n, max: 10n ** 40n }).map((n) => n.toString()), // 16+ digits
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/^\d{1,15}$/.test(s)),
  hostileObject,
);

const BASE64_OF_FRAME = 216;
const NOT_BASE64 = '!@#$%^&*()[]{}<>?,.;:" \t\n~`|\\';
/** Strings Node's base64 decoder cannot turn into exactly one frame: a character outside the alphabet. */
const invalidBase64 = fc.oneof(
  // One frame's length with the padding in place, one character broken.
  fc
    .tuple(fc.uint8Array({ minLength: FRAME, maxLength: FRAME }), fc.nat(BASE64_OF_FRAME - 3), fc.constantFrom(...NOT_BASE64))
    .map(([bytes, at, bad]) => {
      const good = Buffer.from(bytes).toString('base64');
      return `${good.slice(0, at)}${bad}${good.slice(at + 1)}`;
    }),
  fc
    .tuple(fc.string({ maxLength: 300 }), fc.constantFrom(...NOT_BASE64))
    .map(([s, bad]) => `${s.slice(0, s.length >> 1)}${bad}${s.slice(s.length >> 1)}`),
);
/** Valid base64 of anything but exactly 160 bytes (also whole multiples). */
const wrongSizePayload = fc
  .uint8Array({ maxLength: 4 * FRAME })
  .filter((b) => b.length !== FRAME)
  .map((b) => Buffer.from(b).toString('base64'));

/** A Twilio media message cut anywhere: never valid JSON (JSON.stringify has no whitespace). */
const truncatedJson = fc.tuple(track, fc.nat(40), fc.double({ min: 0, max: 1, noNaN: true })).map(([tr, chunk, cut]) => {
  const text = JSON.stringify({
    event: 'media',
    sequenceNumber: String(chunk),
    media: { track: tr, chunk: String(chunk), timestamp: '0', payload: frameBytes(tr, chunk).toString('base64') },
    streamSid: 'MZ00',
  });
  return text.slice(0, 1 + Math.floor(cut * (text.length - 2)));
});
const notJson = fc.string({ maxLength: 200 }).filter((s) => {
  try {
    JSON.parse(s);
    return false;
  } catch {
    return true;
  }
});
const notAnObject = fc
  .oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 4 }))
  .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
  .map((v) => JSON.stringify(v));

const KNOWN_EVENTS = new Set(['connected', 'start', 'media', 'dtmf', 'mark', 'stop']);

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('frame' as const), track, gap: fc.oneof(fc.constant(0), fc.nat(3)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), track, back: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('late' as const), track }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('badChunk' as const),
      track,
      field: fc.constantFrom('chunk' as const, 'timestamp' as const),
      value: badCount,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('badTrack' as const), value: anyJson.filter((v) => v !== 'inbound' && v !== 'outbound') }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badMediaObject' as const),
      value: anyJson.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant('badPayload' as const),
        track,
        payload: invalidBase64,
        reason: fc.constant('invalid_base64' as const),
      }),
      fc.record({
        kind: fc.constant('badPayload' as const),
        track,
        payload: anyJson.filter((v) => typeof v !== 'string'),
        reason: fc.constant('invalid_base64' as const),
      }),
      fc.record({
        kind: fc.constant('badPayload' as const),
        track,
        payload: wrongSizePayload,
        reason: fc.constant('payload_size' as const),
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant('text' as const),
        text: fc.oneof(truncatedJson, notJson),
        reason: fc.constant('invalid_json' as const),
      }),
      fc.record({ kind: fc.constant('text' as const), text: notAnObject, reason: fc.constant('invalid_message' as const) }),
    ),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('binary' as const), bytes: fc.uint8Array({ maxLength: 2048 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('unknownEvent' as const),
      value: anyJson.filter((v) => !(typeof v === 'string' && KNOWN_EVENTS.has(v))),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('dtmf' as const),
      track: fc.oneof(fc.constantFrom<unknown>('inbound_track', 'outbound_track', 'inbound', 'outbound', 'both_tracks'), anyJson),
      digit: fc.oneof(fc.constantFrom<unknown>('0', '9', '*', '#', 'A', 'd', '10', 'E', '', ' 1'), anyJson),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('harmless' as const), event: fc.constantFrom('mark' as const, 'connected' as const) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'repeatedStart' as const }) },
);

const scenario: fc.Arbitrary<Scenario> = fc.integer({ min: 1, max: 3 }).chain((sockets) =>
  fc.record({
    sockets: fc.constant(sockets),
    steps: fc.array(fc.record({ socket: fc.nat(sockets - 1), action }), { minLength: 1, maxLength: 60 }),
    oversized: fc.array(
      fc.nat(99).map((n) => n < 15),
      { minLength: sockets, maxLength: sockets },
    ),
  }),
);

// ---- the model ---------------------------------------------------------------------------

/** One fuzzed socket as the model sees it: what was accepted per track, what was dropped. */
class ModelStream {
  readonly accepted: Record<Track, number[]> = { inbound: [], outbound: [] };
  readonly highest: Record<Track, number> = { inbound: 0, outbound: 0 };
  framesReceived = 0;
  framesDropped = 0;
  dtmf = 0;

  constructor(readonly drops: Map<DropReason, number>) {}

  /** The message for `action` and what the model predicts it does. */
  message(stream: TwilioStream, a: Action): { data: string | Buffer; binary: boolean } {
    const media = (m: unknown) => JSON.stringify({ event: 'media', sequenceNumber: '1', media: m, streamSid: stream.streamSid });
    switch (a.kind) {
      case 'frame': {
        const chunk = this.highest[a.track] + 1 + a.gap;
        this.accept(a.track, chunk);
        return { data: media(frame(a.track, chunk)), binary: false };
      }
      case 'replay': {
        const done = this.accepted[a.track];
        const chunk = done[Math.max(0, done.length - 1 - a.back)] as number; // every track has frame 1
        const behind = this.highest[a.track] - chunk;
        this.dropFrame(behind <= 31 ? 'duplicate' : 'out_of_order');
        return { data: media(frame(a.track, chunk)), binary: false };
      }
      case 'late': {
        // Chunk 0 is never sent as a frame, and every track starts at 1.
        this.dropFrame('out_of_order');
        return { data: media(frame(a.track, 0)), binary: false };
      }
      case 'badChunk': {
        this.dropFrame('invalid_media');
        const m = frame(a.track, this.highest[a.track] + 1);
        return { data: media({ ...m, [a.field]: a.value }), binary: false };
      }
      case 'badTrack':
        this.dropFrame('unknown_track');
        return { data: media({ ...frame('inbound', this.highest.inbound + 1), track: a.value }), binary: false };
      case 'badMediaObject':
        this.dropFrame('invalid_media');
        return { data: media(a.value), binary: false };
      case 'badPayload':
        this.dropFrame(a.reason);
        return { data: media({ ...frame(a.track, this.highest[a.track] + 1), payload: a.payload }), binary: false };
      case 'text':
        this.drop(a.reason);
        return { data: a.text, binary: false };
      case 'binary':
        this.drop('binary_frame');
        return { data: Buffer.from(a.bytes), binary: true };
      case 'unknownEvent':
        this.drop('unknown_event');
        return { data: JSON.stringify({ event: a.value, streamSid: stream.streamSid }), binary: false };
      case 'dtmf':
        // Twilio's rule, written independently of ingest's parser: a known track, one key of a phone pad.
        if (
          ['inbound_track', 'outbound_track', 'inbound', 'outbound'].includes(a.track as string) &&
          typeof a.digit === 'string' &&
          /^[0-9*#A-Da-d]$/.test(a.digit)
        )
          this.dtmf++;
        else this.drop('invalid_dtmf');
        return {
          data: JSON.stringify({ event: 'dtmf', streamSid: stream.streamSid, dtmf: { track: a.track, digit: a.digit } }),
          binary: false,
        };
      case 'harmless':
        return { data: JSON.stringify({ event: a.event, streamSid: stream.streamSid, mark: { name: 'x' } }), binary: false };
      case 'repeatedStart':
        this.drop('repeated_start');
        return { data: JSON.stringify(startMessage(stream)), binary: false };
    }
  }

  accept(t: Track, chunk: number): void {
    this.framesReceived++;
    this.accepted[t].push(chunk);
    this.highest[t] = chunk;
  }

  private dropFrame(reason: DropReason): void {
    this.framesReceived++;
    this.framesDropped++;
    this.drop(reason);
  }

  drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }
}

function frame(t: Track, chunk: number) {
  return {
    track: t,
    chunk: String(chunk),
    timestamp: String(Math.max(0, timestampOf(t, chunk))),
    payload: frameBytes(t, chunk).toString('base64'),
  };
}

function startMessage(stream: TwilioStream) {
  return {
    event: 'start',
    sequenceNumber: '1',
    streamSid: stream.streamSid,
    start: {
      accountSid: 'AC00000000000000000000000000000000',
      streamSid: stream.streamSid,
      callSid: stream.callSid,
      tracks: ['inbound', 'outbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      customParameters: {},
    },
  };
}

// ---- the test ----------------------------------------------------------------------------

const h = await fileHarness();

const dropCounts = async (): Promise<Map<DropReason, number>> =>
  new Map(
    await Promise.all(DROP_REASONS.map(async (r) => [r, await h.metric('earshot_ingest_frames_dropped_total', { reason: r })] as const)),
  );

/** A well-behaved Twilio stream on its own socket: both tracks, one frame each every few ms. */
async function goodStream() {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start();
  let chunk = 0;
  const timer = setInterval(() => {
    chunk++;
    call.frame('inbound', chunk);
    call.frame('outbound', chunk);
  }, 4);
  return {
    call,
    async finish() {
      clearInterval(timer);
      call.stop();
      return chunk;
    },
  };
}

async function runScenario(s: Scenario): Promise<void> {
  const before = await dropCounts();
  const good = await goodStream();
  const predicted = new Map<DropReason, number>();
  const sockets = await Promise.all(range(1, s.sockets).map(() => TwilioStream.open(h.mediaUrl())));
  const models = sockets.map(() => new ModelStream(predicted));
  sockets.forEach((socket, i) => {
    socket.send(startMessage(socket));
    // Every track has frame 1, so replays always have something to repeat.
    for (const tr of TRACKS) socket.send((models[i] as ModelStream).message(socket, { kind: 'frame', track: tr, gap: 0 }).data as string);
  });
  for (const [i, step] of s.steps.entries()) {
    const socket = sockets[step.socket] as TwilioStream;
    const { data, binary } = (models[step.socket] as ModelStream).message(socket, step.action);
    socket.send(data, binary);
    // Yield now and then so the good stream's timer interleaves with the fuzz.
    if (i % 8 === 7) await socket.flushed();
  }
  for (const [i, socket] of sockets.entries()) {
    if (s.oversized[i]) {
      const model = models[i] as ModelStream;
      model.framesDropped++; // counted as a dropped frame, not as a received one (apps/ingest/src/session.ts onClose)
      model.drop('oversized');
      socket.send(JSON.stringify({ event: 'media', media: { payload: 'A'.repeat(70 * 1024) } }));
    } else socket.stop();
  }
  const goodFrames = await good.finish();

  // The good stream lost nothing and its audio is intact, in order.
  const goodEnd = await waitForEnd(h.events, good.call.streamSid);
  if (goodEnd.reason !== 'stopped' || goodEnd.framesReceived !== 2 * goodFrames || goodEnd.framesDropped !== 0)
    throw new Error(`the good stream was disturbed: ${JSON.stringify(goodEnd)} after ${goodFrames} frames per track`);
  for (const tr of TRACKS) {
    const audio = Buffer.concat(audioOf(eventsOf(h.events, good.call.callSid), tr).map((b) => b.payload));
    if (!audio.equals(expectedAudio(tr, range(1, goodFrames)))) throw new Error(`the good stream's ${tr} audio is not intact`);
  }
  good.call.close();

  // Each fuzzed stream delivered exactly what the model accepted, and counted what it sent.
  for (const [i, socket] of sockets.entries()) {
    const model = models[i] as ModelStream;
    const ended = await waitForEnd(h.events, socket.streamSid);
    const want = {
      reason: s.oversized[i] ? 'errored' : 'stopped',
      framesReceived: model.framesReceived,
      framesDropped: model.framesDropped,
    };
    const got = { reason: ended.reason, framesReceived: ended.framesReceived, framesDropped: ended.framesDropped };
    if (JSON.stringify(got) !== JSON.stringify(want))
      throw new Error(`socket ${i} ended ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
    const events = eventsOf(h.events, socket.callSid);
    for (const tr of TRACKS) {
      const audio = Buffer.concat(audioOf(events, tr).map((b) => b.payload));
      const expected = Buffer.concat(model.accepted[tr].map((c) => frameBytes(tr, c)));
      if (!audio.equals(expected))
        throw new Error(`socket ${i}: ${tr} audio differs from the ${model.accepted[tr].length} accepted frames`);
    }
    const dtmf = events.filter((e) => e.type === 'DtmfReceived').length;
    if (dtmf !== model.dtmf) throw new Error(`socket ${i}: ${dtmf} DTMF events, model says ${model.dtmf}`);
    socket.close();
  }

  // Every rejection was counted under its reason, and nothing else was.
  const after = await dropCounts();
  for (const reason of DROP_REASONS) {
    const delta = (after.get(reason) ?? 0) - (before.get(reason) ?? 0);
    if (delta !== (predicted.get(reason) ?? 0))
      throw new Error(`drops{reason="${reason}"} grew by ${delta}, model says ${predicted.get(reason) ?? 0}`);
  }
}

t.test('generated and mutated Twilio messages: counted exactly, the process stays up, no session loses audio', async (t) => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  const numRuns = Number(process.env.FUZZ_RUNS ?? 25);
  const result = await fc.check(fc.asyncProperty(scenario, runScenario), { numRuns, seed, endOnFailure: true });
  t.notOk(result.failed, 'every generated scenario behaved as the model predicts', {
    error: String(result.errorInstance),
    seed: result.seed,
    report: fc.defaultReportMessage(result)?.slice(0, 4000),
  });
  t.equal(result.numRuns, numRuns, `${numRuns} scenarios ran`);

  // Still serving: health, and a new stream right after.
  const health = await fetch(`${h.server.url.replace(/^ws/, 'http')}/healthz`);
  t.equal(health.status, 200, 'ingest still answers /healthz');
  const after = await TwilioStream.open(h.mediaUrl());
  after.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) after.frame('inbound', chunk);
  after.stop();
  t.match(await waitForEnd(h.events, after.streamSid), { reason: 'stopped', framesReceived: 5, framesDropped: 0 }, 'and takes new streams');
  after.close();
});

// ---- start messages ------------------------------------------------------------------------

type StartField =
  | 'start'
  | 'streamSid'
  | 'callSid'
  | 'accountSid'
  | 'tracks'
  | 'mediaFormat'
  | 'encoding'
  | 'sampleRate'
  | 'channels'
  | 'customParameters';
const START_FIELDS: readonly StartField[] = [
  'start',
  'streamSid',
  'callSid',
  'accountSid',
  'tracks',
  'mediaFormat',
  'encoding',
  'sampleRate',
  'channels',
  'customParameters',
];

/** A valid start with one field replaced by a generated value (or removed: `undefined`). */
const startMutation = fc.record({
  field: fc.constantFrom(...START_FIELDS),
  value: fc.oneof(
    anyJson,
    fc.constant(undefined),
    fc.constantFrom<unknown>(['inbound'], ['outbound', 'inbound', 'inbound'], [], 8000, '8000', 1, '1', 'audio/x-mulaw', 'x'.repeat(129)),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { minKeys: 95, maxKeys: 105 }),
  ),
});

/** SPEC §4 and Twilio's documentation, written apart from ingest's parser: refused how, or accepted. */
function expectedStart(start: Record<string, unknown> | unknown, topStreamSid: string): 'ok' | 1003 | 1008 {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const sid = (v: unknown) => typeof v === 'string' && v.length <= 128;
  if (!isObj(start)) return 1008;
  const streamSid = start.streamSid ?? topStreamSid;
  if (!sid(streamSid) || streamSid === '') return 1008;
  if (!sid(start.callSid) || start.callSid === '') return 1008;
  if (!sid(start.accountSid)) return 1008;
  if (!Array.isArray(start.tracks) || start.tracks.length === 0 || start.tracks.some((x) => x !== 'inbound' && x !== 'outbound'))
    return 1008;
  const f = start.mediaFormat;
  if (!isObj(f)) return 1003;
  const is = (v: unknown, n: number) => v === n || v === String(n);
  if (f.encoding !== 'audio/x-mulaw' || !is(f.sampleRate, 8000) || !is(f.channels, 1)) return 1003;
  const p = start.customParameters;
  if (p !== undefined && p !== null && (!isObj(p) || Object.keys(p).length > 100)) return 1008;
  return 'ok';
}

t.test('generated start messages: accepted exactly when valid, otherwise refused with the right close code', async (t) => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  const numRuns = Number(process.env.FUZZ_RUNS ?? 25);
  const outcomes = { accepted: 0, refused: 0 };
  const result = await fc.check(
    fc.asyncProperty(startMutation, async ({ field, value }) => {
      const stream = await TwilioStream.open(h.mediaUrl());
      const message = startMessage(stream) as { start: Record<string, unknown>; streamSid: string } & Record<string, unknown>;
      const format = message.start.mediaFormat as Record<string, unknown>;
      const set = (o: Record<string, unknown>, k: string) => {
        if (value === undefined) delete o[k];
        else o[k] = value;
      };
      if (field === 'start') set(message, 'start');
      else if (field === 'encoding' || field === 'sampleRate' || field === 'channels') set(format, field);
      else set(message.start, field);
      // What was sent, as the server parses it (JSON drops undefined, keeps the rest).
      const sent = JSON.parse(JSON.stringify(message)) as { start?: unknown; streamSid: string };
      const want = expectedStart(sent.start, sent.streamSid);
      const refusedBefore = await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'refused' });
      const eventsBefore = h.events.length;
      stream.send(JSON.stringify(message));
      if (want === 'ok') {
        const streamSid = ((sent.start as Record<string, unknown>).streamSid ?? sent.streamSid) as string;
        stream.send(JSON.stringify({ event: 'media', media: frame('inbound', 1), streamSid }));
        stream.send(JSON.stringify({ event: 'stop', streamSid }));
        const ended = await waitForEnd(h.events, streamSid);
        stream.close();
        if (ended.reason !== 'stopped') throw new Error(`a valid start (${field}) did not stream: ${JSON.stringify(ended)}`);
        outcomes.accepted++;
        return;
      }
      const closed = await stream.closed;
      if (closed.code !== want) throw new Error(`start with ${field} changed: closed ${closed.code} "${closed.reason}", expected ${want}`);
      if ((await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'refused' })) !== refusedBefore + 1)
        throw new Error('the refusal was not counted');
      if (h.events.length !== eventsBefore) throw new Error('a refused start produced events');
      outcomes.refused++;
    }),
    { numRuns, seed, endOnFailure: true },
  );
  t.ok(outcomes.refused > 0, `refusals were exercised (${outcomes.refused} refused, ${outcomes.accepted} accepted)`);
  t.notOk(result.failed, 'every generated start behaved as expected', {
    error: String(result.errorInstance),
    seed: result.seed,
    report: fc.defaultReportMessage(result)?.slice(0, 4000),
  });
});
