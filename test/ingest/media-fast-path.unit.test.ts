import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import t from 'tap';
import { CallPublisher } from '../../apps/ingest/src/call-publisher.js';
import { IngestMetrics } from '../../apps/ingest/src/metrics.js';
import { type IngestContext, Session } from '../../apps/ingest/src/session.js';
import { FAST_MEDIA, scanMedia } from '../../apps/ingest/src/twilio/media-fast-path.js';
import { mediaTrackIndex, toCount } from '../../apps/ingest/src/twilio/messages.js';
import type { CallEvent } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { createMetricsRegistry } from '../../apps/shared/src/metrics.js';
import type { EventLog, ProduceRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { frameBytes } from './support.js';

/**
 * The media fast path (apps/ingest/src/twilio/media-fast-path.ts) must never change a verdict:
 * 1. whenever `scanMedia` accepts bytes, JSON.parse of the same bytes reads the same track,
 *    chunk, timestamp and payload (and `event` is "media");
 * 2. Twilio's own messages (any key order, whitespace) do take it;
 * 3. two sessions, one with the fast path and one without, fed the same generated and mutated
 *    messages, count, drop (per reason) and batch everything identically.
 *
 * `FUZZ_SEED` and `FUZZ_RUNS` reproduce or widen a run.
 */
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const runs = Number(process.env.FUZZ_RUNS ?? 300);
const utf8 = new TextDecoder();
const bytesOf = (text: string): Buffer => Buffer.from(text, 'utf8');

type Track = 'inbound' | 'outbound';

/** Twilio's message as its JSON.stringify writes it. */
function twilioMedia(track: Track, chunk: number, payload: string, timestamp = (chunk - 1) * 20): string {
  return JSON.stringify({
    event: 'media',
    sequenceNumber: String(chunk * 2),
    media: { track, chunk: String(chunk), timestamp: String(timestamp), payload },
    streamSid: 'MZ0123456789abcdef0123456789abcdef',
  });
}

// ---- generators --------------------------------------------------------------------------

const track = fc.constantFrom<Track>('inbound', 'outbound');
const goodPayload = fc.nat(200).map((n) => frameBytes('inbound', n + 1).toString('base64'));
/** Values for a field, from right to each way of being wrong or unusual. */
const countValue = fc.oneof(
  fc.nat(2000).map(String),
  fc.nat(2000),
  fc.constantFrom<unknown>('007', '', '-1', '1.5', '1e3', ' 5', '999999999999999', '9999999999999999', null, true, {}, [], 1.5, -3),
);
const trackValue = fc.oneof(track, fc.constantFrom<unknown>('both', 'Inbound', 'inbound ', '', null, 0, ['inbound'], { track: 'inbound' }));
const payloadValue = fc.oneof(
  goodPayload,
  goodPayload.map((p) => p.replace(/[+/]/g, (c) => (c === '+' ? '-' : '_'))), // URL-safe: Node accepts it
  goodPayload.map((p) => p.slice(0, 100)),
  goodPayload.map((p) => `${p.slice(0, 50)}!${p.slice(51)}`),
  goodPayload.map((p) => `${p.slice(0, 50)}é${p.slice(51)}`),
  fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('base64')),
  fc.constantFrom<unknown>(null, 5, '', {}, []),
);
const extraValue = fc.oneof(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }));
const keyOrder = <T>(entries: [string, T][]) => fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length });
const space = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n  ');

/** A JSON object written by hand so key order, whitespace and duplicate keys can vary. */
function objectText(entries: readonly (readonly [string, string])[], ws: string): string {
  return `{${ws}${entries.map(([k, v]) => `${JSON.stringify(k)}${ws}:${ws}${v}`).join(`${ws},${ws}`)}${ws}}`;
}

const variedMedia = fc
  .record({
    event: fc.oneof(fc.constant<unknown>('media'), fc.constantFrom<unknown>('start', 'stop', 'Media', 'mark', null, 1)),
    track: trackValue,
    chunk: countValue,
    timestamp: countValue,
    payload: payloadValue,
    extraTop: fc.option(fc.tuple(fc.constantFrom('sequenceNumber', 'streamSid', 'x', 'event', 'media', '__proto__'), extraValue)),
    extraMedia: fc.option(fc.tuple(fc.constantFrom('x', 'track', 'chunk', 'payload', 'timestamp'), extraValue)),
    drop: fc.option(fc.constantFrom('event', 'media', 'track', 'chunk', 'timestamp', 'payload')),
    ws: space,
    order: fc.nat(),
  })
  .chain((g) => {
    const media: [string, string][] = (
      [
        ['track', g.track],
        ['chunk', g.chunk],
        ['timestamp', g.timestamp],
        ['payload', g.payload],
        ...(g.extraMedia ? [g.extraMedia] : []),
      ] as [string, unknown][]
    )
      .filter(([k]) => k !== g.drop || g.extraMedia?.[0] === k)
      .map(([k, v]) => [k, JSON.stringify(v)]);
    return keyOrder(media).chain((mediaEntries) => {
      const top: [string, string][] = (
        [
          ['event', JSON.stringify(g.event)],
          ['sequenceNumber', '"3"'],
          ['media', objectText(mediaEntries, g.ws)],
          ['streamSid', '"MZ00"'],
          ...(g.extraTop ? [[g.extraTop[0], JSON.stringify(g.extraTop[1])]] : []),
        ] as [string, string][]
      ).filter(([k]) => k !== g.drop);
      return keyOrder(top).map((topEntries) => objectText(topEntries, g.ws));
    });
  });

/** A Twilio message with a few characters replaced, inserted or deleted anywhere. */
const NASTY = [
  '"',
  '\\',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  ' ',
  '\t',
  '\n',
  '\u0000',
  '\u0001',
  '\u007f',
  'é',
  '0',
  '9',
  'a',
  '=',
  '-',
  '+',
  '/',
];
const mutated = fc
  .tuple(
    track,
    fc.integer({ min: 1, max: 500 }),
    goodPayload,
    fc.array(
      fc.tuple(fc.constantFrom('replace', 'insert', 'delete'), fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...NASTY)),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
  )
  .map(([tr, chunk, payload, edits]) => {
    let text = twilioMedia(tr, chunk, payload);
    for (const [kind, where, c] of edits) {
      const at = Math.min(text.length - 1, Math.floor(where * text.length));
      text =
        kind === 'delete' ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + c + text.slice(at + (kind === 'replace' ? 1 : 0));
    }
    return text;
  });

/** Encoders that escape `/` (legal JSON: the same string once parsed). */
const escapedSlashes = fc
  .tuple(
    track,
    goodPayload.filter((p) => p.includes('/')),
  )
  .map(([tr, p]) => twilioMedia(tr, 1, p).replaceAll('/', '\\/'));

const anyMessage = fc.oneof(
  variedMedia,
  mutated,
  escapedSlashes,
  goodPayload.chain((p) => track.map((tr) => twilioMedia(tr, 1, p))),
);

// ---- 1. accepted means JSON.parse agrees -------------------------------------------------

t.test('whenever the fast path accepts a message, JSON.parse reads the same fields', async (t) => {
  let accepted = 0;
  let total = 0;
  fc.assert(
    fc.property(anyMessage, (text) => {
      total++;
      const bytes = bytesOf(text);
      if (!scanMedia(bytes)) return;
      accepted++;
      const message = JSON.parse(utf8.decode(bytes)) as { event: unknown; media: Record<string, unknown> };
      assert.equal(message.event, 'media');
      assert.ok(typeof message.media.chunk === 'string' && typeof message.media.timestamp === 'string', 'digit strings only');
      assert.deepEqual(
        { ...FAST_MEDIA },
        {
          track: mediaTrackIndex(message.media.track),
          chunk: toCount(message.media.chunk),
          timestampMs: toCount(message.media.timestamp),
          payload: message.media.payload,
        },
      );
    }),
    { numRuns: runs * 10, seed },
  );
  t.ok(accepted > total / 10 && accepted < total, `both paths exercised (${accepted} of ${total} took the fast path)`);
});

t.test("Twilio's media messages take the fast path, in any key order and with whitespace", async (t) => {
  const payload = frameBytes('outbound', 9).toString('base64');
  t.ok(scanMedia(bytesOf(twilioMedia('outbound', 9, payload, 165))));
  t.same({ ...FAST_MEDIA }, { track: 1, chunk: 9, timestampMs: 165, payload });
  const reordered = `{ "streamSid": "MZ1",\n "media": { "payload": "${payload}", "timestamp": "0", "chunk": "12", "track": "inbound" }, "event": "media", "sequenceNumber": "4" }\n`;
  t.ok(scanMedia(bytesOf(reordered)));
  t.same({ ...FAST_MEDIA }, { track: 0, chunk: 12, timestampMs: 0, payload });
  t.ok(scanMedia(bytesOf(twilioMedia('inbound', 1, 'not base64 at all'))), 'a bad payload still takes it: the batcher judges it');
});

t.test('what the fast path leaves to the full parse', async (t) => {
  const payload = frameBytes('inbound', 1).toString('base64');
  const cases: Record<string, string> = {
    'an escape in a string': twilioMedia('inbound', 1, payload).replace('"media":{', '"m\\u0065dia":{'),
    'an escaped slash in the payload': twilioMedia('inbound', 1, 'AB/C').replace('/', '\\/'),
    'a duplicate key': twilioMedia('inbound', 1, payload).replace('"event":"media"', '"event":"media","event":"media"'),
    'a number for chunk': twilioMedia('inbound', 1, payload).replace('"chunk":"1"', '"chunk":1'),
    '16 digits': twilioMedia('inbound', 1, payload).replace('"chunk":"1"', '"chunk":"1234567890123456"'),
    'a non-ASCII character': twilioMedia('inbound', 1, payload).replace('"MZ', '"é'),
    'an extra object member': twilioMedia('inbound', 1, payload).replace('{"event"', '{"x":{},"event"'),
    'trailing text': `${twilioMedia('inbound', 1, payload)}x`,
    'no media object': '{"event":"media","streamSid":"MZ1"}',
    'another event': twilioMedia('inbound', 1, payload).replace('"event":"media"', '"event":"mark"'),
    'an unknown track': twilioMedia('inbound', 1, payload).replace('"inbound"', '"both"'),
    'a byte-order mark': `\ufeff${twilioMedia('inbound', 1, payload)}`,
    'a truncated message': twilioMedia('inbound', 1, payload).slice(0, -1),
  };
  for (const [name, text] of Object.entries(cases)) t.notOk(scanMedia(bytesOf(text)), name);
});

// ---- 3. sessions with and without the fast path behave the same -------------------------

interface Run {
  readonly ctx: IngestContext;
  readonly records: ProduceRecord<CallEvent>[];
  readonly logs: Record<string, unknown>[];
}

function newRun(fastPath: boolean): Run {
  const records: ProduceRecord<CallEvent>[] = [];
  const log = {
    produce: async (_topic: unknown, batch: readonly ProduceRecord<CallEvent>[]) => {
      records.push(...batch);
    },
  } as unknown as EventLog;
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'warn', name: 'fast-path-test', destination });
  const metrics = new IngestMetrics(createMetricsRegistry({ app: 'test', defaultMetrics: false }), {
    sessionsOpen: () => 0,
    callsBuffering: () => 0,
    bufferedAudioMs: () => 0,
  });
  const publisher = new CallPublisher(log, TOPICS.callEvents, metrics, logger, 60_000);
  return {
    ctx: { framesPerBatch: 5, idleTimeoutMs: 60_000, maxMessageBytes: 65_536, ingestNode: 'test', metrics, logger, publisher, fastPath },
    records,
    logs,
  };
}

/** What a run leaves behind that must not depend on the path taken (ids and clocks aside). */
function outcome(run: Run, session: Session) {
  const m = run.ctx.metrics;
  return {
    messages: m.messages,
    framesAccepted: m.framesAccepted,
    bytesAccepted: m.bytesAccepted,
    dropped: m.dropped,
    framesReceived: session.framesReceived,
    framesDropped: session.framesDropped,
    records: run.records.map(({ key, value }) => {
      const { eventId: _id, occurredAtMs: _at, ...rest } = value;
      return { key, ...rest };
    }),
    logs: run.logs.map(({ msg, reason, detail }) => ({ msg, reason, detail })),
  };
}

const START = JSON.stringify({
  event: 'start',
  start: {
    streamSid: 'MZ1',
    accountSid: 'AC1',
    callSid: 'CA1',
    tracks: ['inbound', 'outbound'],
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
});
const STOP = JSON.stringify({ event: 'stop', stop: { accountSid: 'AC1', callSid: 'CA1' }, streamSid: 'MZ1' });

/** A stream: mostly good frames (so batches form), generated and mutated messages between them, maybe a start/stop anywhere. */
const script = fc.array(
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .tuple(track, fc.integer({ min: 1, max: 60 }))
        .map(([tr, c]) => twilioMedia(tr, c, frameBytes(tr, c).toString('base64'))),
    },
    { weight: 3, arbitrary: anyMessage },
    { weight: 1, arbitrary: fc.constantFrom(START, STOP) },
  ),
  { maxLength: 120 },
);

t.test('a session counts, drops and batches the same messages the same way with or without the fast path', async (t) => {
  let compared = 0;
  await fc.assert(
    fc.asyncProperty(script, async (messages) => {
      const fast = newRun(true);
      const full = newRun(false);
      const sessions = [fast, full].map((run) => {
        const session = new Session(run.ctx, 'tenant', '127.0.0.1', 0);
        session.onMessage(new TextEncoder().encode(START).buffer as ArrayBuffer, false);
        return session;
      });
      for (const text of messages) {
        const data = new TextEncoder().encode(text).buffer as ArrayBuffer;
        for (const session of sessions) session.onMessage(data, false);
      }
      for (const session of sessions) session.end('stopped', null, 'closed_before_start', 0);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(outcome(fast, sessions[0] as Session), outcome(full, sessions[1] as Session), 'fast path and full parse agree');
      compared++;
    }),
    { numRuns: runs, seed },
  );
  t.equal(compared, runs, `${runs} generated streams compared`);
});
