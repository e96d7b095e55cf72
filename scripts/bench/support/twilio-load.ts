import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { Histogram, type Percentiles, percentiles, wallMs } from './stats.js';
import { CONNECTED_MESSAGE, FRAME_MS, mediaMessage, payloadRing, startMessage, stopMessage } from './twilio-frames.js';

/**
 * Child process of ingest.bench.ts: plays `calls` simulated Twilio calls to an ingest server,
 * each a media stream with both tracks, at real-time pacing: every 20 ms one `media` message
 * per track, Twilio's real JSON (string sequenceNumber/chunk/timestamp, 160 bytes of base64
 * mu-law). Streams are spread evenly over the 20 ms period (call j of all n is due at
 * t0 + j·20/n ms), as independent calls would be, instead of all firing at once.
 *
 * The two messages of one tick go out in one TCP write per stream per tick, framed here
 * rather than by `ws` (whose per-message masking, random mask keys and buffer copies in
 * JavaScript made this client cost about a third of what the server it measures costs, on
 * the same two cores): two text frames with a zero masking key, which RFC 6455 allows and
 * which leaves the payload as is. The server does exactly the same work (uWS unmasks every
 * frame with whatever key it carries). Control messages (start, stop, close) still go through
 * `ws`, whose writes are never queued (no compression), so order on the socket holds. When
 * this process cannot keep up it sends late frames in a burst; `lag` (actual send − due time)
 * shows it.
 *
 * IPC in: connect → connected, go, mark, report → report, stop → stopped.
 */
export interface ConnectCommand {
  readonly type: 'connect';
  readonly url: string;
  readonly calls: number;
  /** Index of this process's first call among all calls of the step, and how many there are (phases). */
  readonly phaseIndex: number;
  readonly phaseCount: number;
}

export interface ClientReport {
  readonly type: 'report';
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly frames: number;
  readonly lag: Percentiles;
  readonly closed: number;
}

export type ClientMessage =
  | { readonly type: 'connected'; readonly opened: number; readonly failed: number; readonly ms: number }
  | ClientReport
  | { readonly type: 'stopped'; readonly framesSent: number; readonly closed: number };

interface Call {
  readonly ws: WebSocket;
  readonly socket: Socket;
  readonly callSid: string;
  readonly streamSid: string;
  readonly accountSid: string;
  t0: number;
  due: number;
  chunk: number;
  sequence: number;
}

const CONNECT_CONCURRENCY = 50;
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const payloads = payloadRing();
const ringSize = payloads.inbound.length;
const send = (message: ClientMessage): void => {
  process.send?.(message);
};

let calls: Call[] = [];
let next = 0;
let timer: NodeJS.Timeout | null = null;
let running = false;
let framesSent = 0;
let closedUnexpectedly = 0;
const lag = new Histogram();
let measuring = false;
let since = { cpu: process.cpuUsage(), at: wallMs(), frames: 0, closed: 0 };

async function connect(command: ConnectCommand): Promise<void> {
  const began = wallMs();
  calls = [];
  framesSent = 0;
  closedUnexpectedly = 0;
  let failed = 0;
  const opened: Call[] = [];
  for (let i = 0; i < command.calls; i += CONNECT_CONCURRENCY) {
    const wave = Array.from({ length: Math.min(CONNECT_CONCURRENCY, command.calls - i) }, () => open(command.url));
    for (const result of await Promise.allSettled(wave)) {
      if (result.status === 'fulfilled') opened.push(result.value);
      else failed++;
    }
  }
  // Phases follow the global call index so that all client processes together stay even.
  opened.forEach((call, j) => {
    call.t0 = ((command.phaseIndex + j) * FRAME_MS) / command.phaseCount;
  });
  calls = opened;
  send({ type: 'connected', opened: opened.length, failed, ms: wallMs() - began });
}

function open(url: string): Promise<Call> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      const call: Call = {
        ws,
        socket: (ws as unknown as { _socket: Socket })._socket,
        callSid: `CA${hex(16)}`,
        streamSid: `MZ${hex(16)}`,
        accountSid: `AC${hex(16)}`,
        t0: 0,
        due: 0,
        chunk: 1,
        sequence: 1,
      };
      ws.once('close', () => {
        if (running) closedUnexpectedly++;
      });
      ws.send(CONNECTED_MESSAGE);
      resolve(call);
    });
  });
}

/** Header of a masked client text frame of 126-65535 bytes: FIN + text, 126 + 16-bit length, 4-byte mask key. */
const FRAME_HEADER = 8;

/**
 * Writes `text` (ASCII) at `at` as one masked text frame with a zero masking key (the payload
 * XOR 0 is itself); returns where the next frame starts.
 */
function textFrame(out: Buffer, at: number, text: string): number {
  if (text.length < 126 || text.length > 0xffff) throw new Error(`media message of ${text.length} bytes: expected 126-65535`);
  out[at] = 0x81;
  out[at + 1] = 0x80 | 126;
  out.writeUInt16BE(text.length, at + 2);
  out.writeUInt32BE(0, at + 4);
  return at + FRAME_HEADER + out.write(text, at + FRAME_HEADER, 'latin1');
}

/** Starts every stream; media of call j begins at `startAt` + its phase. */
function go(startAt: number): void {
  for (const call of calls) {
    call.t0 += startAt;
    call.due = call.t0;
    call.ws.send(
      startMessage({
        streamSid: call.streamSid,
        callSid: call.callSid,
        accountSid: call.accountSid,
        sequenceNumber: call.sequence++,
        customParameters: { benchT0: String(call.t0) },
      }),
    );
  }
  next = 0;
  running = true;
  pump();
}

/** Sends every frame that is due, in due order (calls are sorted by phase and share one period). */
function pump(): void {
  timer = null;
  if (!running || calls.length === 0) return;
  const now = wallMs();
  const n = calls.length;
  for (;;) {
    const call = calls[next] as Call;
    if (call.due > now) break;
    if (call.ws.readyState === WebSocket.OPEN) {
      const chunk = call.chunk;
      const p = (chunk - 1) % ringSize;
      const inbound = mediaMessage(call.streamSid, call.sequence++, 'inbound', chunk, payloads.inbound[p] as string);
      const outbound = mediaMessage(call.streamSid, call.sequence++, 'outbound', chunk, payloads.outbound[p] as string);
      const frames = Buffer.allocUnsafe(2 * FRAME_HEADER + inbound.length + outbound.length);
      const second = textFrame(frames, 0, inbound);
      textFrame(frames, second, outbound);
      call.socket.write(frames);
      framesSent += 2;
      if (measuring) lag.record(now - call.due);
    }
    call.chunk++;
    call.due += FRAME_MS;
    next = next + 1 === n ? 0 : next + 1;
  }
  // setTimeout, never setImmediate: spinning until the next due time would burn this client's CPU.
  timer = setTimeout(pump, Math.max(0, (calls[next] as Call).due - wallMs()));
}

async function stop(): Promise<void> {
  running = false;
  if (timer) clearTimeout(timer);
  await Promise.all(
    calls.map(
      (call) =>
        new Promise<void>((resolve) => {
          if (call.ws.readyState !== WebSocket.OPEN) return resolve();
          call.ws.once('close', () => resolve());
          call.ws.send(stopMessage(call.streamSid, call.callSid, call.accountSid, call.sequence++));
          call.ws.close(1000);
          setTimeout(() => {
            call.ws.terminate();
            resolve();
          }, 5000).unref();
        }),
    ),
  );
  send({ type: 'stopped', framesSent, closed: closedUnexpectedly });
  calls = [];
}

process.on('message', (message: ConnectCommand | { type: 'go'; startAt: number } | { type: 'mark' | 'report' | 'stop' }) => {
  switch (message.type) {
    case 'connect':
      void connect(message);
      return;
    case 'go':
      go((message as { startAt: number }).startAt);
      return;
    case 'mark':
      lag.reset();
      measuring = true;
      since = { cpu: process.cpuUsage(), at: wallMs(), frames: framesSent, closed: closedUnexpectedly };
      return;
    case 'report': {
      const cpu = process.cpuUsage(since.cpu);
      measuring = false;
      send({
        type: 'report',
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: wallMs() - since.at,
        frames: framesSent - since.frames,
        lag: percentiles(lag),
        closed: closedUnexpectedly - since.closed,
      });
      return;
    }
    case 'stop':
      void stop();
      return;
  }
});
process.on('disconnect', () => process.exit(0));
