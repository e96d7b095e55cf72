import type {
  AudioChunkReceived,
  CallEvent,
  Role,
  SessionEvent,
  SessionSummary,
  Track,
  TranscriptionStartRequested,
  UtteranceRecognized,
} from '../../../shared/src/events.js';
import { type RedactionRules, redact } from '../domain/redaction.js';
import { nameBasedUuid, utteranceId } from '../domain/utterance-id.js';
import type { RecognizerStream, SpeechEngine, Utterance } from '../engine/speech-engine.port.js';

/**
 * The transcription state of one call inside the asr consumer (SPEC §3.2, §3.3, §5, §6):
 * a session exists only between a start and a stop command; while it exists each track that
 * sends audio gets a recognizer stream. Audio before start is never transcribed. Stop (and
 * the end of the stream) flush the utterance in progress, so the last words are never lost.
 *
 * Offsets: `holdOffset()` is the lowest call-events offset whose audio is still needed to
 * reproduce output not yet written (an utterance in progress or awaiting its text); the
 * partition commits no further, so a new owner replays from there.
 */
export interface Emitter {
  utterance(event: UtteranceRecognized): Promise<void>;
  session(event: SessionEvent): Promise<void>;
}

export interface TranscriberDeps {
  readonly engine: SpeechEngine;
  readonly emit: Emitter;
  readonly redactionRules: (tenantId: string) => RedactionRules;
  readonly now: () => number;
  /** Reports a failure of background work (inference, produce) that no caller awaits. */
  readonly onError: (error: unknown, context: Record<string, unknown>) => void;
}

// Twilio timestamps can jump (lost frames); the gap is filled with silence so sample
// positions keep matching media time, up to this much (longer gaps shift later positions).
const MAX_GAP_FILL_MS = 10_000;
const SILENCE = 0xff;

interface TrackState {
  readonly name: Track;
  readonly stream: RecognizerStream;
  readonly streamSid: string;
  readonly role: Role;
  nextMs: number;
  /** (offset, first sample) of each chunk pushed, oldest first: maps a sample back to its record. */
  readonly chunks: { offset: number; sample: number; atMs: number }[];
  /** Output chain: utterances are emitted in order, after their text is ready. */
  tail: Promise<void>;
  /** Offsets held by utterances whose text is ready but not yet written. */
  readonly unwritten: Set<number>;
}

interface Session {
  readonly start: TranscriptionStartRequested;
  readonly openedAtMs: number;
  readonly tracks: Map<Track, TrackState>;
  readonly totals: Record<Role, { bytes: number; transcripts: number }>;
}

export class CallTranscriber {
  private session: Session | null = null;
  private streamSid: string | null = null;

  constructor(
    readonly callSid: string,
    readonly tenantId: string,
    readonly partition: number,
    private readonly deps: TranscriberDeps,
  ) {}

  get started(): boolean {
    return this.session !== null;
  }

  /** Restores a session that was open at the committed offset (after a rebalance or crash). */
  restore(start: TranscriptionStartRequested, openedAtMs: number): void {
    this.session = this.newSession(start, openedAtMs);
  }

  async handle(event: CallEvent, offset: number): Promise<void> {
    switch (event.type) {
      case 'TranscriptionStartRequested':
        return this.start(event, offset);
      case 'TranscriptionStopRequested':
        return this.close('stop_requested', event.data.requestId, event.occurredAtMs, offset);
      case 'AudioChunkReceived':
        return this.audio(event.data, offset);
      case 'StreamStarted':
        this.streamSid = event.data.streamSid;
        return;
      case 'StreamEnded':
        if (event.data.streamSid !== this.streamSid && this.streamSid !== null) return;
        // Twilio said stop (the call is over): close the session. Otherwise (socket lost,
        // stream replaced) only finish what was said: a new stream may continue the call.
        if (event.data.reason === 'stopped') return this.close('stream_ended', null, event.occurredAtMs, offset);
        return this.flushTracks();
      case 'DtmfReceived':
        return;
      default: {
        const never: never = event;
        throw new Error(`unhandled call event ${(never as { type: string }).type}`);
      }
    }
  }

  holdOffset(): number | null {
    if (!this.session) return null;
    let hold: number | null = null;
    for (const track of this.session.tracks.values()) {
      const needed = offsetOfSample(track, track.stream.pendingFromSample);
      if (needed !== null) hold = min(hold, needed);
      for (const o of track.unwritten) hold = min(hold, o);
    }
    return hold;
  }

  /** Resolves when every utterance handed to the engine so far has been written. */
  async drain(): Promise<void> {
    if (!this.session) return;
    await Promise.all([...this.session.tracks.values()].map((t) => t.tail));
  }

  private async start(event: CallEvent & { type: 'TranscriptionStartRequested' }, offset: number): Promise<void> {
    if (this.session) return; // already started: the API answered 409; the first start wins
    this.session = this.newSession(event.data, event.occurredAtMs);
    await this.deps.emit.session({
      eventId: nameBasedUuid(`${this.callSid}:opened:${event.data.requestId}`),
      callSid: this.callSid,
      tenantId: this.tenantId,
      occurredAtMs: this.deps.now(),
      type: 'TranscriptionSessionOpened',
      data: {
        requestId: event.data.requestId,
        customerStreamId: event.data.customerStreamId,
        agentStreamId: event.data.agentStreamId,
        language: event.data.language,
        start: event.data,
        commandPartition: this.partition,
        commandOffset: offset,
      },
    });
  }

  private newSession(start: TranscriptionStartRequested, openedAtMs: number): Session {
    return {
      start,
      openedAtMs,
      tracks: new Map(),
      totals: { customer: { bytes: 0, transcripts: 0 }, agent: { bytes: 0, transcripts: 0 } },
    };
  }

  private async audio(chunk: AudioChunkReceived, offset: number): Promise<void> {
    const session = this.session;
    if (!session) return; // before start-streaming, or after stop: never transcribed
    let track = session.tracks.get(chunk.track);
    if (track && track.streamSid !== chunk.streamSid) {
      await this.finishTrack(track); // a new media stream: its timestamps start again at 0
      session.tracks.delete(chunk.track);
      track = undefined;
    }
    if (!track) {
      const role = chunk.track === 'inbound' ? session.start.inboundRole : session.start.outboundRole;
      track = {
        name: chunk.track,
        // Positions on the track's own clock (Twilio timestamps): a replay after a crash starts
        // mid-call and must name the same samples the same way.
        stream: this.deps.engine.createStream({
          language: 'en-US',
          detailedTokens: session.start.detailedToken,
          startSample: chunk.timestampMs * 8,
        }),
        streamSid: chunk.streamSid,
        role,
        nextMs: chunk.timestampMs,
        chunks: [],
        tail: Promise.resolve(),
        unwritten: new Set(),
      };
      session.tracks.set(chunk.track, track);
    }
    if (chunk.timestampMs < track.nextMs) return; // overlaps audio already pushed: a duplicate
    const gap = Math.min(chunk.timestampMs - track.nextMs, MAX_GAP_FILL_MS);
    if (gap > 0) this.push(track, new Uint8Array(gap * 8).fill(SILENCE), offset);
    this.push(track, chunk.payload, offset);
    track.nextMs = chunk.timestampMs + Math.floor(chunk.payload.length / 8);
    session.totals[track.role].bytes += chunk.payload.length;
  }

  private push(track: TrackState, audio: Uint8Array, offset: number): void {
    track.chunks.push({ offset, sample: track.stream.samples, atMs: this.deps.now() });
    this.chain(track, track.stream.push(audio));
  }

  /** Emits a recognizer result after everything before it, holding its offset until written. */
  private chain(track: TrackState, result: Promise<Utterance[]>): void {
    const session = this.session as Session;
    track.tail = track.tail.then(async () => {
      let utterances: Utterance[];
      try {
        utterances = await result;
      } catch (error) {
        this.deps.onError(error, { callSid: this.callSid, stage: 'recognize' });
        return;
      }
      for (const u of utterances) {
        const held = offsetOfSample(track, u.startSample) ?? 0;
        track.unwritten.add(held);
        try {
          const speechEndedAtMs = chunkOfSample(track, u.endSample)?.atMs ?? this.deps.now();
          await this.deps.emit.utterance(this.toEvent(session, track, u, speechEndedAtMs));
          session.totals[track.role].transcripts++;
        } catch (error) {
          this.deps.onError(error, { callSid: this.callSid, stage: 'emit' });
        } finally {
          track.unwritten.delete(held);
        }
      }
      trimChunks(track);
    });
  }

  /** `speechEndedAtMs`: when the audio holding the end of speech reached us (latency is measured from it). */
  private toEvent(session: Session, track: TrackState, u: Utterance, speechEndedAtMs: number): UtteranceRecognized {
    const start = session.start;
    const id = utteranceId(this.callSid, track.streamSid, track.name, u.startSample);
    const wantRedacted = start.redactionOutput !== 'unredacted';
    const wantPlain = start.redactionOutput !== 'redacted';
    const rules = this.deps.redactionRules(this.tenantId);
    const redactedTokens = u.tokens && wantRedacted ? u.tokens.map((w) => ({ ...w, text: redact(w.text, rules).text })) : u.tokens;
    return {
      eventId: nameBasedUuid(id),
      utteranceId: id,
      callSid: this.callSid,
      tenantId: this.tenantId,
      streamId: track.role === 'customer' ? start.customerStreamId : start.agentStreamId,
      role: track.role,
      senderExternalId: track.role === 'customer' ? start.customerId : start.agentId,
      track: track.name,
      startMs: u.startMs,
      endMs: u.endMs,
      text: wantRedacted ? redact(u.text, rules).text : null,
      unredactedText: wantPlain ? u.text : null,
      language: start.language,
      // Word tokens only go out in unredacted form when no redacted output was asked for.
      tokens: start.detailedToken ? (redactedTokens ?? null) : null,
      engine: this.deps.engine.name,
      model: this.deps.engine.model,
      speechEndedAtMs,
      occurredAtMs: this.deps.now(),
    };
  }

  private async flushTracks(): Promise<void> {
    if (!this.session) return;
    for (const track of this.session.tracks.values()) await this.finishTrack(track);
    this.session.tracks.clear();
  }

  private async finishTrack(track: TrackState): Promise<void> {
    this.chain(track, track.stream.flush());
    await track.tail;
  }

  private async close(
    reason: 'stop_requested' | 'stream_ended',
    requestId: string | null,
    occurredAtMs: number,
    offset: number,
  ): Promise<void> {
    const session = this.session;
    if (!session) return;
    await this.flushTracks();
    this.session = null;
    const summaries: SessionSummary[] = (['customer', 'agent'] as const).map((role) => ({
      role,
      streamId: role === 'customer' ? session.start.customerStreamId : session.start.agentStreamId,
      totalAudioBytes: session.totals[role].bytes,
      audioDurationMs: Math.round(session.totals[role].bytes / 8),
      streamingSeconds: Math.max(0, (occurredAtMs - session.openedAtMs) / 1000),
      transcripts: session.totals[role].transcripts,
    }));
    await this.deps.emit.session({
      eventId: nameBasedUuid(`${this.callSid}:closed:${session.start.requestId}`),
      callSid: this.callSid,
      tenantId: this.tenantId,
      occurredAtMs: this.deps.now(),
      type: 'TranscriptionSessionClosed',
      data: { requestId, reason, summaries, commandPartition: this.partition, commandOffset: offset },
    });
  }
}

function chunkOfSample(track: TrackState, sample: number): TrackState['chunks'][number] | undefined {
  let found: TrackState['chunks'][number] | undefined;
  for (const chunk of track.chunks) {
    if (chunk.sample > sample) break;
    found = chunk;
  }
  return found ?? track.chunks[0];
}

function offsetOfSample(track: TrackState, sample: number): number | null {
  if (sample >= track.stream.samples) return null; // nothing pending
  return chunkOfSample(track, sample)?.offset ?? null;
}

/** Forgets chunk positions older than anything still pending. */
function trimChunks(track: TrackState): void {
  const pending = track.stream.pendingFromSample;
  let keepFrom = 0;
  while (keepFrom + 1 < track.chunks.length && (track.chunks[keepFrom + 1] as { sample: number }).sample <= pending) keepFrom++;
  if (keepFrom > 0) track.chunks.splice(0, keepFrom);
}

const min = (a: number | null, b: number): number => (a === null ? b : Math.min(a, b));
