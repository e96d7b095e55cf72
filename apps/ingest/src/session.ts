import type { StreamEndReason } from '../../shared/src/events.js';
import type { Logger } from '../../shared/src/logger.js';
import type { CallChannel, CallPublisher, StreamSource } from './call-publisher.js';
import {
  APPEND_ACCEPTED,
  APPEND_DUPLICATE,
  APPEND_INVALID_BASE64,
  APPEND_OUT_OF_ORDER,
  APPEND_PAYLOAD_SIZE,
  type AudioBatch,
  type BatchSink,
  FRAME_BYTES,
  TrackBatcher,
} from './domain/track-batcher.js';
import { DROP, type DropReason, type IngestMetrics, type SessionOutcome } from './metrics.js';
import {
  DTMF_DIGIT,
  dtmfTrack,
  isObject,
  mediaTrackIndex,
  parseStart,
  printable,
  TRACK_INBOUND,
  TRACK_OUTBOUND,
  toCount,
} from './twilio/messages.js';

/** What every session of one ingest server shares; built once by `main.ts`. */
export interface IngestContext {
  readonly framesPerBatch: number;
  readonly idleTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly ingestNode: string;
  readonly metrics: IngestMetrics;
  readonly logger: Logger;
  readonly publisher: CallPublisher;
}

/** The part of a uWS WebSocket a session uses (a fake in tests). */
export interface SocketControl {
  end(code: number, reason: string): void;
}

const AWAITING_START = 0;
const STREAMING = 1;
const ENDED = 2;

/** WebSocket close codes the server sends (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_INTERNAL_ERROR = 1011;

/** The message uWS passes to `close` when a frame exceeded `maxPayloadLength` (it drops the TCP connection). */
export const UWS_TOO_BIG = 'Received too big message';

const APPEND_DROP: Record<number, DropReason> = {
  [APPEND_DUPLICATE]: 'duplicate',
  [APPEND_OUT_OF_ORDER]: 'out_of_order',
  [APPEND_INVALID_BASE64]: 'invalid_base64',
  [APPEND_PAYLOAD_SIZE]: 'payload_size',
};

const utf8 = new TextDecoder();

/**
 * One Twilio media stream socket, from upgrade to close: awaiting `start` → streaming → ended.
 * Context (tenant, Call SID, stream SID) is bound to a logger once, lazily; each drop reason
 * is logged once per session and counted every time. Nothing here ever touches another
 * session except ending the stream it replaces.
 */
export class Session implements BatchSink, StreamSource {
  ws: SocketControl | null = null;
  /** Messages received: the idle sweep compares it between sweeps. */
  messages = 0;
  framesReceived = 0;
  framesDropped = 0;
  streamSid = '';
  callSid = '';
  private state = AWAITING_START;
  private channel: CallChannel | null = null;
  private inbound: TrackBatcher | null = null;
  private outbound: TrackBatcher | null = null;
  private messagesAtCheck = 0;
  private lastActiveAtMs: number;
  /** Bitmask over DROP_REASONS already logged by this session. */
  private logged = 0;
  private boundLogger: Logger | null = null;

  constructor(
    private readonly ctx: IngestContext,
    readonly tenantId: string,
    readonly remoteAddress: string,
    nowMs: number = Date.now(),
  ) {
    this.lastActiveAtMs = nowMs;
  }

  get started(): boolean {
    return this.state === STREAMING;
  }

  get ended(): boolean {
    return this.state === ENDED;
  }

  // ---- messages ----------------------------------------------------------------------

  onMessage(data: ArrayBuffer, isBinary: boolean): void {
    this.messages++;
    const counts = this.ctx.metrics.messages;
    if (isBinary) {
      counts.other++;
      this.drop('binary_frame', null);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(utf8.decode(data));
    } catch {
      counts.other++;
      this.drop('invalid_json', null);
      return;
    }
    if (!isObject(message)) {
      counts.other++;
      this.drop('invalid_message', 'not a JSON object');
      return;
    }
    switch (message.event) {
      case 'media':
        counts.media++;
        this.onMedia(message.media);
        return;
      case 'start':
        counts.start++;
        this.onStart(message);
        return;
      case 'stop':
        counts.stop++;
        if (this.state === STREAMING) this.end('stopped', null, 'stopped', 0);
        else this.drop(this.state === ENDED ? 'after_stop' : 'before_start', 'stop');
        return;
      case 'dtmf':
        counts.dtmf++;
        this.onDtmf(message.dtmf);
        return;
      case 'mark':
        counts.mark++;
        return;
      case 'connected':
        counts.connected++;
        return;
      default:
        counts.other++;
        this.drop('unknown_event', printable(message.event));
    }
  }

  /** The hot path: validate, decode into the track's batch buffer, count. */
  private onMedia(media: unknown): void {
    if (this.state !== STREAMING) {
      this.drop(this.state === ENDED ? 'after_stop' : 'before_start', 'media');
      return;
    }
    this.framesReceived++;
    if (!isObject(media)) {
      this.dropFrame('invalid_media', 'media is not an object');
      return;
    }
    const track = mediaTrackIndex(media.track);
    if (track < 0) {
      this.dropFrame('unknown_track', printable(media.track));
      return;
    }
    const chunk = toCount(media.chunk);
    const timestampMs = toCount(media.timestamp);
    if (chunk < 0 || timestampMs < 0) {
      this.dropFrame('invalid_media', 'chunk and timestamp must be non-negative integers');
      return;
    }
    const payload = media.payload;
    if (typeof payload !== 'string') {
      this.dropFrame('invalid_base64', 'payload is not a string');
      return;
    }
    const batcher = (track === TRACK_INBOUND ? this.inbound : this.outbound) as TrackBatcher;
    const result = batcher.append(chunk, timestampMs, payload);
    if (result !== APPEND_ACCEPTED) {
      this.dropFrame(APPEND_DROP[result] as DropReason, null);
      return;
    }
    if (track === TRACK_INBOUND) this.ctx.metrics.framesAccepted.inbound++;
    else this.ctx.metrics.framesAccepted.outbound++;
    this.ctx.metrics.bytesAccepted += FRAME_BYTES;
  }

  private onStart(message: Record<string, unknown>): void {
    if (this.state !== AWAITING_START) {
      this.drop('repeated_start', null);
      return;
    }
    const parsed = parseStart(message);
    if (!parsed.ok) {
      this.state = ENDED;
      this.ctx.metrics.sessionsEnded.inc({ outcome: 'refused' });
      this.logger().warn({ reason: parsed.reason, detail: parsed.detail }, 'ingest.stream_refused');
      this.close(parsed.reason === 'unsupported_media_format' ? CLOSE_UNSUPPORTED_DATA : CLOSE_POLICY_VIOLATION, parsed.detail);
      return;
    }
    const start = parsed.start;
    this.streamSid = start.streamSid;
    this.callSid = start.callSid;
    this.state = STREAMING;
    this.boundLogger = null; // rebound with the Call SID on next use
    this.inbound = new TrackBatcher(TRACK_INBOUND, this.ctx.framesPerBatch, this);
    this.outbound = new TrackBatcher(TRACK_OUTBOUND, this.ctx.framesPerBatch, this);
    const { channel, previous } = this.ctx.publisher.attach(this.tenantId, start.callSid, this);
    this.channel = channel;
    // Twilio restarts a failed stream on a new socket: the older one ends first, in order.
    previous?.replacedBy(start.streamSid);
    this.ctx.publisher.event(channel, this, {
      type: 'StreamStarted',
      data: {
        streamSid: start.streamSid,
        accountSid: start.accountSid,
        tracks: start.tracks,
        customParameters: start.customParameters,
        encoding: 'audio/x-mulaw',
        sampleRate: 8000,
        channels: 1,
        ingestNode: this.ctx.ingestNode,
      },
    });
    this.logger().info({ tracks: start.tracks, replaced: previous?.streamSid ?? null }, 'ingest.stream_started');
  }

  private onDtmf(dtmf: unknown): void {
    if (this.state !== STREAMING) {
      this.drop(this.state === ENDED ? 'after_stop' : 'before_start', 'dtmf');
      return;
    }
    const track = isObject(dtmf) ? dtmfTrack(dtmf.track) : null;
    const digit = isObject(dtmf) && typeof dtmf.digit === 'string' && DTMF_DIGIT.test(dtmf.digit) ? dtmf.digit : null;
    if (!track || !digit) {
      this.drop('invalid_dtmf', null);
      return;
    }
    this.ctx.publisher.event(this.channel as CallChannel, this, {
      type: 'DtmfReceived',
      data: { streamSid: this.streamSid, track, digit },
    });
  }

  // ---- batches and drops -------------------------------------------------------------

  onBatch(batch: AudioBatch): void {
    this.ctx.publisher.audio(this.channel as CallChannel, this, batch);
  }

  onAudioDropped(frames: number): void {
    this.framesDropped += frames;
    this.ctx.metrics.dropped.backpressure += frames;
    this.logOnce('backpressure', 'the event log is not keeping up: oldest audio of this call dropped');
  }

  private dropFrame(reason: DropReason, detail: string | null): void {
    this.framesDropped++;
    this.drop(reason, detail);
  }

  private drop(reason: DropReason, detail: string | null): void {
    this.ctx.metrics.dropped[reason]++;
    this.logOnce(reason, detail);
  }

  private logOnce(reason: DropReason, detail: string | null): void {
    const bit = 1 << DROP[reason];
    if ((this.logged & bit) !== 0) return;
    this.logged |= bit;
    this.logger().warn({ reason, detail }, 'ingest.message_dropped (logged once per session and reason)');
  }

  private logger(): Logger {
    if (!this.boundLogger) {
      this.boundLogger =
        this.state === AWAITING_START
          ? this.ctx.logger.child({ tenantId: this.tenantId, remoteAddress: this.remoteAddress })
          : this.ctx.logger.child({ tenantId: this.tenantId, callSid: this.callSid, streamSid: this.streamSid });
    }
    return this.boundLogger;
  }

  // ---- ending ------------------------------------------------------------------------

  /**
   * Ends the session once. A started stream flushes its partial batches and gets a
   * StreamEnded(`reason`); a session that never started only counts as `unstarted`.
   * `closeCode` 0 leaves the socket open (after `stop`, Twilio closes it).
   */
  end(reason: StreamEndReason, detail: string | null, unstarted: SessionOutcome, closeCode: number): void {
    if (this.state === ENDED) return;
    const wasStreaming = this.state === STREAMING;
    this.state = ENDED;
    if (wasStreaming) {
      const channel = this.channel as CallChannel;
      this.inbound?.flush();
      this.outbound?.flush();
      this.ctx.publisher.ended(channel, this, reason, detail);
      this.ctx.publisher.detach(channel, this);
      this.ctx.metrics.sessionsEnded.inc({ outcome: reason });
      this.logger().info({ reason, detail, framesReceived: this.framesReceived, framesDropped: this.framesDropped }, 'ingest.stream_ended');
    } else {
      this.ctx.metrics.sessionsEnded.inc({ outcome: unstarted });
    }
    if (closeCode !== 0) this.close(closeCode, detail ?? reason);
  }

  /**
   * A message made our own code throw (a bug): only this session pays for it. It ends as
   * `errored` (close 1011), the message is counted as `internal_error` and the error logged.
   */
  failed(error: unknown): void {
    this.drop('internal_error', null);
    this.logger().error({ err: error }, 'ingest.message_failed');
    this.end('errored', 'internal error while handling a message', 'closed_before_start', CLOSE_INTERNAL_ERROR);
  }

  replacedBy(streamSid: string): void {
    this.end('replaced', `replaced by stream ${streamSid}`, 'closed_before_start', CLOSE_NORMAL);
  }

  /** The socket is gone (uWS `close`); `ws` must not be used any more. */
  onClose(code: number, message: ArrayBuffer): void {
    this.ws = null;
    const text = utf8.decode(message);
    if (text === UWS_TOO_BIG) {
      // uWS drops the connection when a frame announces more than maxPayloadLength.
      if (this.state !== ENDED) this.framesDropped++;
      this.drop('oversized', `a frame over ${this.ctx.maxMessageBytes} bytes`);
      this.end('errored', `a frame over ${this.ctx.maxMessageBytes} bytes closed the socket`, 'closed_before_start', 0);
      return;
    }
    this.end(
      'closed_without_stop',
      `socket closed without stop (code ${code}${text ? `: ${text.slice(0, 80)}` : ''})`,
      'closed_before_start',
      0,
    );
  }

  /** Called by the server's sweep: ends idle sessions, flushes batches of tracks gone quiet. */
  sweep(nowMs: number): void {
    if (this.messages !== this.messagesAtCheck) {
      this.messagesAtCheck = this.messages;
      this.lastActiveAtMs = nowMs;
    } else if (nowMs - this.lastActiveAtMs >= this.ctx.idleTimeoutMs) {
      const detail = `idle timeout: no message for ${Math.round(this.ctx.idleTimeoutMs / 1000)} s`;
      if (this.state === ENDED) this.close(CLOSE_NORMAL, detail);
      else this.end('errored', detail, 'idle_before_start', CLOSE_POLICY_VIOLATION);
      return;
    }
    if (this.state === STREAMING) {
      this.inbound?.flushIfStale();
      this.outbound?.flushIfStale();
    }
  }

  shutdown(): void {
    this.end('closed_without_stop', 'ingest shutting down', 'shutdown_before_start', CLOSE_GOING_AWAY);
    this.close(CLOSE_GOING_AWAY, 'ingest shutting down');
  }

  private close(code: number, reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.end(code, closeReason(reason));
  }
}

/** A close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5). */
export function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}
