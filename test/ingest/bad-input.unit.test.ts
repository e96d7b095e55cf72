import t, { type Test } from 'tap';
import { waitFor } from '../support/wait.js';
import { audioOf, eventsOf, expectedAudio, FRAME, fileHarness, range, TwilioStream, timestampOf, waitForEnd } from './support.js';

/**
 * Each bad input gets a named test: what happens to the frame, to the session, to the
 * metrics, and that it is logged once with the Call SID. apps/ingest/README.md has the table.
 */
const h = await fileHarness();

const dropped = (reason: string) => h.metric('earshot_ingest_frames_dropped_total', { reason });

/** Starts a one-track stream, runs `bad` between frames 1-5 and 6-10, stops, returns what happened. */
async function around(bad: (call: TwilioStream) => void) {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) call.frame('inbound', chunk);
  bad(call);
  for (const chunk of range(6, 10)) call.frame('inbound', chunk);
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid);
  const audio = Buffer.concat(audioOf(eventsOf(h.events, call.callSid), 'inbound').map((b) => b.payload));
  call.close();
  return { call, ended, intact: audio.equals(expectedAudio('inbound', range(1, 10))) };
}

function loggedOnce(t: Test, reason: string, callSid: string) {
  const lines = h.logs.filter((l) => l.reason === reason && l.callSid === callSid);
  t.equal(lines.length, 1, `logged once with the Call SID (${reason})`);
  t.equal(lines[0]?.msg, 'ingest.message_dropped (logged once per session and reason)');
}

t.test('garbage instead of JSON is dropped and counted; the stream goes on', async (t) => {
  const before = await dropped('invalid_json');
  const { call, ended, intact } = await around((c) => {
    c.send('this is not json');
    c.send('{"event":"media","media":');
    c.send('\u0000\u0001garbage');
  });
  t.ok(intact, 'the audio around the garbage is intact');
  t.equal((await dropped('invalid_json')) - before, 3);
  t.match(ended, { reason: 'stopped', framesReceived: 10, framesDropped: 0 }, 'garbage is not known to be audio');
  loggedOnce(t, 'invalid_json', call.callSid);
});

t.test('invalid base64 in a media payload is dropped and counted', async (t) => {
  const before = await dropped('invalid_base64');
  const good = expectedAudio('inbound', [99]).toString('base64');
  const { call, ended, intact } = await around((c) => {
    c.media('inbound', 6, timestampOf('inbound', 6), `${good.slice(0, 100)}!@#$${good.slice(104)}`); // same length, bad characters
    c.media('inbound', 6, timestampOf('inbound', 6), 'not base64 at all');
    c.send({ event: 'media', streamSid: c.streamSid, media: { track: 'inbound', chunk: '6', timestamp: '105', payload: 42 } });
  });
  t.ok(intact, 'the retransmitted chunk 6 with a valid payload is accepted');
  t.equal((await dropped('invalid_base64')) - before, 3);
  t.match(ended, { framesReceived: 13, framesDropped: 3 });
  loggedOnce(t, 'invalid_base64', call.callSid);
});

t.test('a payload that is not exactly one 160-byte frame is dropped and counted', async (t) => {
  const before = await dropped('payload_size');
  const { call, ended, intact } = await around((c) => {
    c.media('inbound', 6, timestampOf('inbound', 6), Buffer.alloc(100, 0xff)); // not a multiple of a frame
    c.media('inbound', 6, timestampOf('inbound', 6), Buffer.alloc(2 * FRAME, 0xff)); // two frames in one message
    c.media('inbound', 6, timestampOf('inbound', 6), Buffer.alloc(FRAME + 1, 0xff));
    c.media('inbound', 6, timestampOf('inbound', 6), '');
  });
  t.ok(intact);
  t.equal((await dropped('payload_size')) - before, 4);
  t.match(ended, { framesReceived: 14, framesDropped: 4 });
  loggedOnce(t, 'payload_size', call.callSid);
});

t.test('media before start is dropped and counted; the stream then starts normally', async (t) => {
  const before = await dropped('before_start');
  const call = await TwilioStream.open(h.mediaUrl());
  call.connected();
  call.frame('inbound', 1);
  call.frame('inbound', 2);
  call.start({ tracks: ['inbound'] });
  for (const chunk of range(3, 7)) call.frame('inbound', chunk);
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid);
  t.equal((await dropped('before_start')) - before, 2);
  t.match(ended, { reason: 'stopped', framesReceived: 5, framesDropped: 0 }, 'frames before start belong to no stream');
  t.same(
    audioOf(eventsOf(h.events, call.callSid), 'inbound').map((b) => [b.firstChunk, b.lastChunk]),
    [[3, 7]],
  );
  t.ok(
    h.logs.some((l) => l.reason === 'before_start' && typeof l.tenantId === 'string'),
    'logged with the tenant (no Call SID yet)',
  );
  call.close();
});

t.test('an unknown track is dropped and counted', async (t) => {
  const before = await dropped('unknown_track');
  const { call, ended, intact } = await around((c) => {
    c.media('both', 6, timestampOf('inbound', 6), expectedAudio('inbound', [6]));
    c.media('inbound_track', 6, timestampOf('inbound', 6), expectedAudio('inbound', [6]));
  });
  t.ok(intact);
  t.equal((await dropped('unknown_track')) - before, 2);
  t.match(ended, { framesReceived: 12, framesDropped: 2 });
  loggedOnce(t, 'unknown_track', call.callSid);
});

t.test('binary frames, unknown events, bad chunk numbers and bad DTMF are dropped and counted', async (t) => {
  const before = {
    binary: await dropped('binary_frame'),
    unknown: await dropped('unknown_event'),
    media: await dropped('invalid_media'),
    dtmf: await dropped('invalid_dtmf'),
    repeated: await dropped('repeated_start'),
  };
  const { ended, intact } = await around((c) => {
    c.send(Buffer.alloc(FRAME, 0x7f), true);
    c.send({ event: 'clear', streamSid: c.streamSid });
    c.send({ event: 'media', streamSid: c.streamSid, media: { track: 'inbound', chunk: '-1', timestamp: '0', payload: '' } });
    c.send({ event: 'media', streamSid: c.streamSid, media: { track: 'inbound', chunk: '6', timestamp: '1e3', payload: '' } });
    c.dtmf('X');
    c.start({ tracks: ['inbound'] });
  });
  t.ok(intact);
  t.equal((await dropped('binary_frame')) - before.binary, 1);
  t.equal((await dropped('unknown_event')) - before.unknown, 1);
  t.equal((await dropped('invalid_media')) - before.media, 2);
  t.equal((await dropped('invalid_dtmf')) - before.dtmf, 1);
  t.equal((await dropped('repeated_start')) - before.repeated, 1, 'a second start on the same socket is ignored');
  t.match(ended, { reason: 'stopped', framesReceived: 12, framesDropped: 2 });
});

t.test('a 10 MB frame closes only its own socket and is counted as oversized', async (t) => {
  const before = await dropped('oversized');
  const healthy = await TwilioStream.open(h.mediaUrl());
  healthy.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) healthy.frame('inbound', chunk);

  const big = await TwilioStream.open(h.mediaUrl());
  big.start({ tracks: ['inbound'] });
  big.frame('inbound', 1);
  await big.flushed();
  big.send(JSON.stringify({ event: 'media', media: { payload: 'A'.repeat(10 * 1024 * 1024) } }));
  const closed = await big.closed;
  // uWS drops the TCP connection when a frame announces more than maxPayloadLength: no close frame.
  t.equal(closed.code, 1006);
  const ended = await waitForEnd(h.events, big.streamSid);
  t.match(ended, { reason: 'errored', framesReceived: 1, framesDropped: 1 });
  t.match(ended.detail, /a frame over 65536 bytes/);
  t.equal((await dropped('oversized')) - before, 1);

  for (const chunk of range(6, 10)) healthy.frame('inbound', chunk);
  healthy.stop();
  const healthyEnd = await waitForEnd(h.events, healthy.streamSid);
  t.match(healthyEnd, { reason: 'stopped', framesReceived: 10, framesDropped: 0 }, 'the other session is untouched');
  const audio = Buffer.concat(audioOf(eventsOf(h.events, healthy.callSid), 'inbound').map((b) => b.payload));
  t.ok(audio.equals(expectedAudio('inbound', range(1, 10))));
  healthy.close();
});

t.test('a start with an unsupported media format is refused with a clear reason', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ mediaFormat: { encoding: 'audio/x-l16', sampleRate: 16000, channels: 1 } });
  const closed = await call.closed;
  t.equal(closed.code, 1003, 'closed as unsupported data');
  t.match(closed.reason, /unsupported mediaFormat .*audio\/x-l16.*only audio\/x-mulaw, 8000 Hz, 1 channel/);
  t.same(eventsOf(h.events, call.callSid), [], 'no stream was started');
  t.ok((await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'refused' })) >= 1);
});

t.test('a start without a Call SID is refused as a policy violation', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.send({ event: 'start', start: { streamSid: call.streamSid, accountSid: 'AC1', tracks: ['inbound'] } });
  const closed = await call.closed;
  t.equal(closed.code, 1008);
  t.match(closed.reason, /callSid/);
});

t.test('frames after stop are dropped and counted', async (t) => {
  const before = await dropped('after_stop');
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  call.frame('inbound', 1);
  call.stop();
  call.frame('inbound', 2);
  await waitFor('the late frame is counted', async () => (await dropped('after_stop')) - before === 1);
  t.match(await waitForEnd(h.events, call.streamSid), { reason: 'stopped', framesReceived: 1 });
  call.close();
});
