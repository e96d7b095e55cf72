/**
 * Hot-path benchmark (STYLE.md "Hot path"): media messages through Session.onMessage, as uWS
 * hands them over (ArrayBuffer of JSON), batched and handed to the publisher, with an event
 * log that acknowledges at once. One core, no sockets.
 *
 *   npx tsx test/ingest/bench/session-frames.bench.ts
 */
import { CallPublisher } from '../../../apps/ingest/src/call-publisher.js';
import { IngestMetrics } from '../../../apps/ingest/src/metrics.js';
import { Session } from '../../../apps/ingest/src/session.js';
import { createLogger } from '../../../apps/shared/src/logger.js';
import { createMetricsRegistry } from '../../../apps/shared/src/metrics.js';
import type { EventLog } from '../../../apps/shared/src/ports/event-log.port.js';
import { frameBytes, timestampOf } from '../support.js';

const CALLS = 200;
const FRAMES_PER_TRACK = 500;

let produced = 0;
const log = {
  produce: async (_topic: unknown, records: readonly unknown[]) => {
    produced += records.length;
  },
} as unknown as EventLog;
const logger = createLogger({ level: 'warn', name: 'bench' });
const metrics = new IngestMetrics(createMetricsRegistry({ app: 'bench', defaultMetrics: false }), {
  sessionsOpen: () => 0,
  callsBuffering: () => 0,
  bufferedAudioMs: () => 0,
});
const publisher = new CallPublisher(log, { name: 'bench' } as never, metrics, logger, 30_000);
const ctx = { framesPerBatch: 5, idleTimeoutMs: 30_000, maxMessageBytes: 65_536, ingestNode: 'bench', metrics, logger, publisher };

const encoder = new TextEncoder();
const message = (streamSid: string, track: 'inbound' | 'outbound', chunk: number): ArrayBuffer =>
  encoder.encode(
    JSON.stringify({
      event: 'media',
      sequenceNumber: String(chunk * 2),
      media: {
        track,
        chunk: String(chunk),
        timestamp: String(timestampOf(track, chunk)),
        payload: frameBytes(track, chunk).toString('base64'),
      },
      streamSid,
    }),
  ).buffer as ArrayBuffer;

const sessions = Array.from({ length: CALLS }, (_, i) => {
  const session = new Session(ctx, 'tenant', '127.0.0.1');
  const start = {
    event: 'start',
    start: {
      streamSid: `MZ${i}`,
      accountSid: 'AC1',
      callSid: `CA${i}`,
      tracks: ['inbound', 'outbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  };
  session.onMessage(encoder.encode(JSON.stringify(start)).buffer as ArrayBuffer, false);
  return session;
});
// Messages are prepared up front: the benchmark measures the server side only.
const frames: ArrayBuffer[][] = sessions.map((_, i) => {
  const list: ArrayBuffer[] = [];
  for (let chunk = 1; chunk <= FRAMES_PER_TRACK; chunk++) {
    list.push(message(`MZ${i}`, 'inbound', chunk), message(`MZ${i}`, 'outbound', chunk));
  }
  return list;
});

const total = CALLS * FRAMES_PER_TRACK * 2;
const started = process.hrtime.bigint();
for (let f = 0; f < FRAMES_PER_TRACK * 2; f++) {
  for (let c = 0; c < CALLS; c++) (sessions[c] as Session).onMessage((frames[c] as ArrayBuffer[])[f] as ArrayBuffer, false);
  if (f % 50 === 49) await new Promise((r) => setImmediate(r)); // let the publisher drain, as the event loop would
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await new Promise((r) => setImmediate(r));
const accepted = metrics.framesAccepted.inbound + metrics.framesAccepted.outbound;
console.log(
  `${total} media messages (${CALLS} calls × 2 tracks × ${FRAMES_PER_TRACK}) in ${(seconds * 1000).toFixed(0)} ms: ` +
    `${Math.round(total / seconds).toLocaleString('en')} frames/s on one core ` +
    `(${((seconds / total) * 1e6).toFixed(2)} µs per frame; a call is 100 frames/s → ~${Math.round(total / seconds / 100).toLocaleString('en')} calls per core); ` +
    `accepted ${accepted}, records produced ${produced}`,
);
