import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import t from 'tap';
import WebSocket from 'ws';
import { type IngestOptions, type IngestServer, startIngest } from '../../apps/ingest/main.js';
import type { AudioChunkReceived, CallEvent, StreamEnded } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { createTestApp, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

/**
 * Test harness for ingest: an embedded runtime, an ingest server on port 0, an app with a
 * stream token, and every call event the server produced (in produce order, which is the
 * log's order per Call SID). `gate` lets a test make the event log slow or unavailable.
 */
export interface Gate {
  /** Resolves when a produce may go on; throw from it to fail the produce. */
  wait?: () => Promise<void>;
}

export interface Harness {
  readonly runtime: Runtime & { cleanup(): Promise<void> };
  readonly server: IngestServer;
  readonly apiId: string;
  readonly token: string;
  readonly events: CallEvent[];
  /** Ingest's log lines (warn and above), parsed. */
  readonly logs: Record<string, unknown>[];
  readonly gate: Gate;
  mediaUrl(token?: string): string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/**
 * One harness shared by every test of a file (await it at the top level): closed when the
 * file's tests are done. A test that needs its own settings starts its own harness.
 */
export async function fileHarness(): Promise<Harness> {
  const h = await startHarness();
  t.teardown(() => h.close());
  return h;
}

export async function startHarness(
  options: { env?: Record<string, string>; twilioAuthToken?: string; ingest?: IngestOptions } = {},
): Promise<Harness> {
  const runtime = await testRuntime({ env: { EARSHOT_INGEST_PORT: '0', ...options.env } });
  const events: CallEvent[] = [];
  const gate: Gate = {};
  const eventLog = recordingLog(runtime.eventLog, events, gate);
  const created = await createTestApp(
    runtime,
    'ingest tenant',
    options.twilioAuthToken ? { twilioAuthToken: options.twilioAuthToken } : {},
  );
  const { token } = await runtime.tokens.issue(created.apiId);
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'warn', name: 'ingest-test', destination });
  let server: IngestServer;
  try {
    server = await startIngest({ ...runtime, eventLog, logger }, options.ingest);
  } catch (error) {
    await runtime.cleanup();
    throw error;
  }
  let closed = false;
  return {
    runtime,
    server,
    apiId: created.apiId,
    token,
    events,
    logs,
    gate,
    mediaUrl: (t = token) => `${server.url}/twilio-media/${t}`,
    metric: (name, labels) => metricValue(runtime, name, labels),
    close: async () => {
      if (closed) return;
      closed = true;
      await server.stop();
      await runtime.cleanup();
    },
  };
}

/** Delegates to `inner` and records call events once the log accepted them. */
export function recordingLog(inner: EventLog, events: CallEvent[], gate: Gate): EventLog {
  return {
    kind: inner.kind,
    ensureTopics: (topics) => inner.ensureTopics(topics),
    describeTopic: (name) => inner.describeTopic(name),
    endOffsets: (topic) => inner.endOffsets(topic),
    createConsumer: (options) => inner.createConsumer(options),
    close: () => inner.close(),
    produce: async (topic, records) => {
      if (gate.wait) await gate.wait();
      await inner.produce(topic, records);
      if (topic.name.startsWith('earshot.call-events')) for (const r of records) events.push(r.value as CallEvent);
    },
  };
}

export async function metricValue(runtime: Runtime, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = runtime.metrics.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  let sum = 0;
  for (const v of values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) {
      if (!('metricName' in v) || v.metricName === name || v.metricName === undefined) sum += v.value;
    }
  }
  return sum;
}

// ---- Twilio ------------------------------------------------------------------------------

export const FRAME = 160;

/** Deterministic audio: frame `chunk` of a track, distinct per track and chunk. */
export function frameBytes(track: 'inbound' | 'outbound', chunk: number): Buffer {
  const bytes = Buffer.alloc(FRAME);
  const seed = (track === 'inbound' ? 17 : 131) + chunk * 7;
  for (let i = 0; i < FRAME; i++) bytes[i] = (seed + i * 3) & 0xff;
  return bytes;
}

export const newCallSid = (): string => `CA${randomBytes(16).toString('hex')}`;
export const newStreamSid = (): string => `MZ${randomBytes(16).toString('hex')}`;

/** A Twilio Media Streams client with real message shapes (string sequenceNumber, chunk, timestamp). */
export class TwilioStream {
  sequence = 0;
  private lastSent: Promise<void> = Promise.resolve();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(
    readonly ws: WebSocket,
    readonly callSid: string,
    readonly streamSid: string,
  ) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {}); // a refused or dropped socket is what several tests want
  }

  static async open(
    url: string,
    options: { callSid?: string; streamSid?: string; headers?: Record<string, string>; ca?: Buffer } = {},
  ): Promise<TwilioStream> {
    const ws = new WebSocket(url, { headers: options.headers, ...(options.ca ? { ca: options.ca } : {}) });
    const stream = new TwilioStream(ws, options.callSid ?? newCallSid(), options.streamSid ?? newStreamSid());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
    return stream;
  }

  send(message: unknown, binary = false): void {
    const data = typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message);
    this.lastSent = new Promise<void>((resolve) => this.ws.send(data, { binary }, () => resolve()));
  }

  connected(): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  }

  start(overrides: { tracks?: string[]; mediaFormat?: unknown; customParameters?: unknown } = {}): void {
    this.send({
      event: 'start',
      sequenceNumber: String(++this.sequence),
      start: {
        accountSid: 'AC00000000000000000000000000000000',
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: overrides.tracks ?? ['inbound', 'outbound'],
        mediaFormat: overrides.mediaFormat ?? { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        customParameters: overrides.customParameters ?? { FirstName: 'Jane', caller: '+15550001111' },
      },
      streamSid: this.streamSid,
    });
  }

  media(track: string, chunk: number | string, timestamp: number | string, payload: Buffer | string): void {
    this.send({
      event: 'media',
      sequenceNumber: String(++this.sequence),
      media: {
        track,
        chunk: String(chunk),
        timestamp: String(timestamp),
        payload: typeof payload === 'string' ? payload : payload.toString('base64'),
      },
      streamSid: this.streamSid,
    });
  }

  /** Frame `chunk` of a track at Twilio's timestamp for it (20 ms apart, a little jitter). */
  frame(track: 'inbound' | 'outbound', chunk: number): void {
    this.media(track, chunk, timestampOf(track, chunk), frameBytes(track, chunk));
  }

  dtmf(digit: string, track = 'inbound_track'): void {
    this.send({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: String(++this.sequence), dtmf: { track, digit } });
  }

  mark(name: string): void {
    this.send({ event: 'mark', streamSid: this.streamSid, sequenceNumber: String(++this.sequence), mark: { name } });
  }

  stop(): void {
    this.send({
      event: 'stop',
      sequenceNumber: String(++this.sequence),
      stop: { accountSid: 'AC00000000000000000000000000000000', callSid: this.callSid },
      streamSid: this.streamSid,
    });
  }

  /** Resolves once everything sent so far was written to the socket. */
  flushed(): Promise<void> {
    return this.lastSent;
  }

  close(): void {
    this.ws.close(1000, 'bye');
  }
}

/** Twilio timestamps are ms since the stream started; real ones jitter by a few ms. */
export function timestampOf(track: 'inbound' | 'outbound', chunk: number): number {
  return (chunk - 1) * 20 + (track === 'inbound' ? 5 : 7) + (chunk % 3);
}

/** HTTP status of a refused upgrade (or 101 when it opened). */
export async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const stream = await TwilioStream.open(url, { headers });
    stream.ws.terminate();
    return 101;
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === undefined) throw error;
    return status;
  }
}

// ---- reading events back -----------------------------------------------------------------

export function eventsOf(events: readonly CallEvent[], callSid: string): CallEvent[] {
  return events.filter((e) => e.callSid === callSid);
}

export function audioOf(events: readonly CallEvent[], track: 'inbound' | 'outbound', streamSid?: string): AudioChunkReceived[] {
  return events.flatMap((e) =>
    e.type === 'AudioChunkReceived' && e.data.track === track && (streamSid === undefined || e.data.streamSid === streamSid)
      ? [e.data]
      : [],
  );
}

export function endOf(events: readonly CallEvent[], streamSid: string): StreamEnded | undefined {
  for (const e of events) if (e.type === 'StreamEnded' && e.data.streamSid === streamSid) return e.data;
  return undefined;
}

export async function waitForEnd(events: readonly CallEvent[], streamSid: string, timeoutMs = 10_000): Promise<StreamEnded> {
  await waitFor(`StreamEnded of ${streamSid}`, () => endOf(events, streamSid) !== undefined, timeoutMs);
  return endOf(events, streamSid) as StreamEnded;
}

/** The bytes of consecutive frames of a track, as the client sent them. */
export function expectedAudio(track: 'inbound' | 'outbound', chunks: Iterable<number>): Buffer {
  return Buffer.concat([...chunks].map((c) => frameBytes(track, c)));
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
