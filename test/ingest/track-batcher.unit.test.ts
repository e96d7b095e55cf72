import t from 'tap';
import {
  APPEND_ACCEPTED,
  APPEND_DUPLICATE,
  APPEND_INVALID_BASE64,
  APPEND_OUT_OF_ORDER,
  APPEND_PAYLOAD_SIZE,
  type AudioBatch,
  TrackBatcher,
} from '../../apps/ingest/src/domain/track-batcher.js';
import { parseStart, toCount } from '../../apps/ingest/src/twilio/messages.js';
import { frameBytes } from './support.js';

/** The batching rules without sockets (apps/ingest/README.md, "Batching"). */
function batcher(framesPerBatch = 5) {
  const batches: AudioBatch[] = [];
  const b = new TrackBatcher(0, framesPerBatch, { onBatch: (batch) => batches.push(batch) });
  const append = (chunk: number, ts = (chunk - 1) * 20, payload = frameBytes('inbound', chunk).toString('base64')) =>
    b.append(chunk, ts, payload);
  return { b, batches, append };
}

t.test('duplicates and late frames are told apart within the last 31 chunks', async (t) => {
  const { append } = batcher();
  t.equal(append(1), APPEND_ACCEPTED);
  t.equal(append(2), APPEND_ACCEPTED);
  t.equal(append(4), APPEND_ACCEPTED);
  t.equal(append(4), APPEND_DUPLICATE, 'the highest again');
  t.equal(append(2), APPEND_DUPLICATE, 'an older accepted chunk');
  t.equal(append(3), APPEND_OUT_OF_ORDER, 'a skipped chunk arriving late');
  t.equal(append(40), APPEND_ACCEPTED, 'a jump');
  t.equal(append(4), APPEND_OUT_OF_ORDER, 'beyond the window everything older is late');
  t.equal(append(41), APPEND_ACCEPTED);
  t.equal(append(40), APPEND_DUPLICATE);
});

t.test('payloads must be one 160-byte frame in base64', async (t) => {
  const { append } = batcher();
  const good = frameBytes('inbound', 1).toString('base64');
  t.equal(good.length, 216);
  t.equal(append(1, 0, good.replace(/=+$/, '')), APPEND_INVALID_BASE64, 'padding is required');
  t.equal(append(1, 0, `${good.slice(0, 10)}====${good.slice(14)}`), APPEND_INVALID_BASE64, 'padding in the middle');
  t.equal(append(1, 0, `${good.slice(0, 10)} \n\t ${good.slice(15)}`), APPEND_INVALID_BASE64, 'whitespace');
  t.equal(append(1, 0, Buffer.alloc(162).toString('base64')), APPEND_PAYLOAD_SIZE, '162 bytes');
  t.equal(append(1, 0, Buffer.alloc(159).toString('base64')), APPEND_PAYLOAD_SIZE, '159 bytes');
  t.equal(append(1, 0, good), APPEND_ACCEPTED, 'the chunk is still free after rejected payloads');
});

t.test('timestamps within ±9 ms of 20 ms steps stay in one batch; more closes it', async (t) => {
  const { append, batches, b } = batcher();
  append(1, 0);
  append(2, 29); // +29: 9 ms late, still contiguous
  append(3, 40); // +11
  append(4, 71); // +31: a gap
  append(5, 91);
  b.flush();
  t.same(
    batches.map((x) => [x.firstChunk, x.lastChunk, x.timestampMs, x.durationMs]),
    [
      [1, 3, 0, 60],
      [4, 5, 71, 40],
    ],
  );
});

t.test('a partial batch that stops growing is flushed by the second stale check', async (t) => {
  const { append, batches, b } = batcher();
  append(1);
  append(2);
  b.flushIfStale();
  t.equal(batches.length, 0, 'first check only notes the size');
  append(3);
  b.flushIfStale();
  t.equal(batches.length, 0, 'it grew since');
  b.flushIfStale();
  t.equal(batches.length, 1, 'it did not grow: flushed');
  t.equal(batches[0]?.payload.length, 480);
  t.ok(batches[0]?.payload.equals(Buffer.concat([1, 2, 3].map((c) => frameBytes('inbound', c)))), 'the payload is the frames, in order');
});

t.test('a full batch hands its buffer over and the next one gets a fresh one', async (t) => {
  const { append, batches } = batcher(2);
  for (const chunk of [1, 2, 3, 4]) append(chunk);
  t.equal(batches.length, 2);
  t.ok(
    batches[0]?.payload.equals(Buffer.concat([frameBytes('inbound', 1), frameBytes('inbound', 2)])),
    'not overwritten by the next batch',
  );
});

t.test('Twilio numbers arrive as digit strings; anything else is refused', async (t) => {
  t.equal(toCount('0'), 0);
  t.equal(toCount('123456'), 123456);
  t.equal(toCount(42), 42);
  for (const bad of ['', ' 1', '1e3', '0x10', '-1', '1.5', 1.5, -3, null, undefined, '1234567890123456', Number.NaN]) {
    t.equal(toCount(bad), -1, `refuses ${JSON.stringify(bad)}`);
  }
});

t.test('start messages: tracks, custom parameters and media format are validated', async (t) => {
  const start = (over: Record<string, unknown>) =>
    parseStart({
      start: {
        streamSid: 'MZ1',
        accountSid: 'AC1',
        callSid: 'CA1',
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        ...over,
      },
    });
  t.match(start({}), { ok: true, start: { tracks: ['inbound'], customParameters: {} } });
  t.match(start({ customParameters: { n: 5, b: true, s: 'x' } }), { ok: true, start: { customParameters: { n: '5', b: 'true', s: 'x' } } });
  t.match(start({ tracks: ['inbound', 'inbound', 'outbound'] }), { ok: true, start: { tracks: ['inbound', 'outbound'] } });
  t.match(start({ tracks: ['both_tracks'] }), { ok: false, reason: 'invalid_start', detail: /unknown track "both_tracks"/ });
  t.match(start({ tracks: [] }), { ok: false, reason: 'invalid_start' });
  t.match(start({ callSid: '' }), { ok: false, reason: 'invalid_start', detail: /callSid/ });
  t.match(start({ mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 2 } }), {
    ok: false,
    reason: 'unsupported_media_format',
  });
  t.match(start({ mediaFormat: undefined }), { ok: false, reason: 'unsupported_media_format' });
  t.match(parseStart({ event: 'start' }), { ok: false, reason: 'invalid_start' });
});
