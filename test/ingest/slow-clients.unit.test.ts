import { connect, type Socket } from 'node:net';
import t from 'tap';
import { sleep, waitFor } from '../support/wait.js';
import { audioOf, eventsOf, expectedAudio, range, startHarness, TwilioStream, waitForEnd } from './support.js';

/**
 * Issue 9, scenario 5: clients that hold connections without ever becoming a stream. 200
 * slow-loris upgrades (request headers trickled a few bytes at a time, never finished) and 50
 * WebSocket clients that stream but never read (their receive buffers fill) must not stop a
 * healthy call from keeping every byte, and the half-open upgrades must not be held forever.
 */
const SLOW = 200;

t.test('200 slow-loris upgrades and clients that never read do not disturb a healthy call', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const { hostname, port, pathname } = new URL(h.mediaUrl());

  // Slow loris: a valid path and token, headers trickled and never ended.
  const slow: Socket[] = [];
  let slowClosed = 0;
  for (let i = 0; i < SLOW; i++) {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => undefined);
    socket.once('close', () => slowClosed++);
    socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\n`);
    slow.push(socket);
  }
  t.teardown(() => {
    for (const s of slow) s.destroy();
  });
  const trickle = setInterval(() => {
    for (const s of slow) if (!s.destroyed) s.write('X-Slow: 1\r\n');
  }, 500);
  t.teardown(() => clearInterval(trickle));

  // Clients that stream a little and then never read anything the server sends.
  const deaf: TwilioStream[] = [];
  for (let i = 0; i < 50; i++) {
    const stream = await TwilioStream.open(h.mediaUrl());
    stream.start({ tracks: ['inbound'] });
    stream.frame('inbound', 1);
    (stream.ws as unknown as { _socket: Socket })._socket.pause();
    deaf.push(stream);
  }

  // Meanwhile a healthy two-track call streams 200 frames per track.
  const healthy = await TwilioStream.open(h.mediaUrl());
  healthy.start();
  for (const chunk of range(1, 200)) {
    healthy.frame('inbound', chunk);
    healthy.frame('outbound', chunk);
    if (chunk % 10 === 0) await sleep(5);
  }
  healthy.stop();
  const ended = await waitForEnd(h.events, healthy.streamSid, 30_000);
  t.equal(ended.reason, 'stopped', 'the healthy call ends normally');
  const mine = eventsOf(h.events, healthy.callSid);
  for (const track of ['inbound', 'outbound'] as const) {
    const audio = Buffer.concat(audioOf(mine, track).map((c) => c.payload));
    t.ok(audio.equals(expectedAudio(track, range(1, 200))), `${track}: every byte of the healthy call, in order`);
  }

  // The server ends the half-open upgrades rather than holding them forever.
  await waitFor('the slow-loris upgrades closed by the server', () => slowClosed === SLOW, 120_000);
  t.equal(slowClosed, SLOW, `all ${SLOW} half-open upgrades were closed by the server`);
  const health = await fetch(`${h.server.url.replace(/^ws/, 'http')}/healthz`);
  t.equal(health.status, 200, 'ingest still answers');
});
