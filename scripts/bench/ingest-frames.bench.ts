import { CallPublisher } from '../../apps/ingest/src/call-publisher.js';
import { IngestMetrics } from '../../apps/ingest/src/metrics.js';
import { Session } from '../../apps/ingest/src/session.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { createMetricsRegistry } from '../../apps/shared/src/metrics.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import type { BenchResult } from './run.js';
import { frameBytes, type TrackName } from './support/twilio-frames.js';

/**
 * The ingest hot path alone (STYLE.md §10): media messages through `Session.onMessage` as
 * uWS hands them over (an ArrayBuffer of JSON), validated, decoded into the track batches and
 * handed to the publisher, whose event log acknowledges at once. One core, no sockets, no
 * Kafka, no Avro: the floor under what `ingest` (sockets + Kafka) measures.
 *
 *   npm run bench -- ingest-frames [--calls 200] [--frames 500] [--runs 3]
 *
 * Messages are built before the clock starts; the event loop is yielded every 50 rounds so the
 * publisher drains as it would in the server.
 */
export async function run(args: string[]): Promise<BenchResult> {
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const calls = option('calls', 200);
  const framesPerTrack = option('frames', 500);
  const runs = option('runs', 3);
  const rows: (string | number)[][] = [];
  for (let r = 1; r <= runs; r++) {
    const m = await once(calls, framesPerTrack);
    rows.push([
      r,
      m.total,
      Math.round(m.seconds * 1000),
      Math.round(m.total / m.seconds),
      Number(((m.cpuSeconds / m.total) * 1e6).toFixed(2)),
      Math.round(m.total / m.cpuSeconds / 100),
      m.accepted,
      m.produced,
    ]);
  }
  return {
    title: `Ingest hot path: ${calls} calls × 2 tracks × ${framesPerTrack} media messages through Session.onMessage, instant event log, one core`,
    columns: ['run', 'frames', 'wall ms', 'frames/s', 'CPU µs/frame', 'calls per core', 'accepted', 'records produced'],
    rows,
    notes: [
      'CPU µs/frame is process CPU time (user + system, GC threads included) over the frames, less sensitive to other work on a shared machine than frames/s (wall time), though not immune.',
      'calls per core = frames per CPU-second ÷ 100 (a two-track call is 100 frames/s); an upper bound: no sockets, no Avro, no Kafka (see the ingest benchmark for those).',
      'Run 1 includes JIT warm-up; later runs are the steady state.',
    ],
  };
}

async function once(calls: number, framesPerTrack: number) {
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
  const publisher = new CallPublisher(log, TOPICS.callEvents, metrics, logger, 30_000);
  const ctx = { framesPerBatch: 5, idleTimeoutMs: 30_000, maxMessageBytes: 65_536, ingestNode: 'bench', metrics, logger, publisher };
  const encoder = new TextEncoder();
  const encode = (value: unknown): ArrayBuffer => encoder.encode(JSON.stringify(value)).buffer as ArrayBuffer;
  // Twilio's timestamps jitter by a few ms; the batcher tolerates ±9 ms.
  const timestampOf = (track: TrackName, chunk: number) => (chunk - 1) * 20 + (track === 'inbound' ? 5 : 7) + (chunk % 3);
  const message = (streamSid: string, track: TrackName, chunk: number): ArrayBuffer =>
    encode({
      event: 'media',
      sequenceNumber: String(chunk * 2),
      media: {
        track,
        chunk: String(chunk),
        timestamp: String(timestampOf(track, chunk)),
        payload: frameBytes(track, chunk).toString('base64'),
      },
      streamSid,
    });

  const sessions = Array.from({ length: calls }, (_, i) => {
    const session = new Session(ctx, 'tenant', '127.0.0.1');
    session.onMessage(
      encode({
        event: 'start',
        start: {
          streamSid: `MZ${i}`,
          accountSid: 'AC1',
          callSid: `CA${i}`,
          tracks: ['inbound', 'outbound'],
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
      }),
      false,
    );
    return session;
  });
  const frames: ArrayBuffer[][] = sessions.map((_, i) => {
    const list: ArrayBuffer[] = [];
    for (let chunk = 1; chunk <= framesPerTrack; chunk++)
      list.push(message(`MZ${i}`, 'inbound', chunk), message(`MZ${i}`, 'outbound', chunk));
    return list;
  });

  const total = calls * framesPerTrack * 2;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let f = 0; f < framesPerTrack * 2; f++) {
    for (let c = 0; c < calls; c++) (sessions[c] as Session).onMessage((frames[c] as ArrayBuffer[])[f] as ArrayBuffer, false);
    if (f % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await new Promise((r) => setImmediate(r));
  return {
    total,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    accepted: metrics.framesAccepted.inbound + metrics.framesAccepted.outbound,
    produced,
  };
}
