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
import { type RecordingStore, recordingIdOf } from '../../../shared/src/ports/recording-store.port.js';
import { type RedactionRules, redact } from '../domain/redaction.js';
import { RECORDING_SAMPLE_RATE, SessionRecording } from '../domain/session-recording.js';
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
  /**
   * How long a stop waits, after it is read, for audio the gateway received before the stop
   * but that reaches the partition after it (see `Stopping`). Default 10 s.
   */
  readonly stopGraceMs?: number;
  /** Audio that reached the call while it was not transcribed, by why (a metric). */
  readonly notTranscribed?: (reason: NotTranscribedReason) => void;
  /** Where sessions with `audioRecordingAllowed` keep their audio; absent: nothing is recorded. */
  readonly recordings?: {
    readonly store: RecordingStore;
    readonly maxDurationS: number;
    readonly written?: (outcome: RecordingOutcome) => void;
  };
}

/**
 * `not_started`: no session (before start-streaming, or after stop); `received_before_start`: a
 * session exists, but ingest received the chunk before start-streaming was accepted (it reached
 * the partition after the start because ingest's producer lagged the API's).
 */
export type NotTranscribedReason = 'not_started' | 'received_before_start';

/** `kept`: a restored session closed again after a replay; the recording its first owner wrote stays. */
export type RecordingOutcome = 'written' | 'truncated' | 'empty' | 'kept';

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
  /**
   * One entry per push (or flush) whose results are not yet written: the offset that was still
   * needed when it was pushed. The engine forgets an utterance once its text is ready, before
   * it is written; these entries keep holding its audio until then.
   */
  readonly inflight: Set<{ readonly hold: number }>;
}

interface Session {
  readonly start: TranscriptionStartRequested;
  readonly openedAtMs: number;
  /**
   * When the API accepted the start (its command's occurredAtMs; 0 if unknown). Audio ingest
   * received before it is not transcribed, even if it reaches the partition after the start.
   */
  readonly requestedAtMs: number;
  readonly tracks: Map<Track, TrackState>;
  readonly totals: Record<Role, { bytes: number; transcripts: number }>;
  /** The session's audio when `audioRecordingAllowed` (SPEC §6); written when the session closes. */
  readonly recording: SessionRecording | null;
  /** False for a session restored after a takeover: the audio before it is not in this process. */
  readonly fromStart: boolean;
}

/**
 * A stop command that has been read but not yet carried out. The stop comes from the API's
 * producer, the audio from ingest's: after a Kafka outage (or just ingest's 100 ms batching) the
 * stop can reach the partition before audio that ingest received earlier. That audio belongs to
 * the session, so the stop waits until ingest's records pass the stop's time (a chunk received
 * after it), the stream ends, or the grace period runs out.
 */
interface Stopping {
  readonly requestId: string;
  readonly occurredAtMs: number;
  readonly offset: number;
  readonly deadlineMs: number;
}

const DEFAULT_STOP_GRACE_MS = 10_000;

export class CallTranscriber {
  private session: Session | null = null;
  private streamSid: string | null = null;
  /** A media stream is connected (started or sending audio, not ended): more audio will come. */
  private streamLive = false;
  private stopping: Stopping | null = null;
  /** Offset of the call's last record handled (an abandoned session closes there). */
  private lastOffset = 0;
  /** The summaries of the session that closed last (for a stop-streaming that comes after the stream ended it). */
  private lastClosed: readonly SessionSummary[] | null = null;

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
  restore(start: TranscriptionStartRequested, openedAtMs: number, requestedAtMs: number): void {
    this.session = this.newSession(start, openedAtMs, requestedAtMs, false);
    // Whether its stream is still connected is not known here: assume so, so that a replayed
    // stop still waits for audio that may follow it (a dead stream costs the grace period).
    this.streamLive = true;
  }

  /**
   * A session whose media stream is gone for good: a stream was seen (it ended or sent audio)
   * and nothing of the call has come for a while (the asr consumer decides how long, on the
   * partition's clock). A start whose stream has not connected yet is not: it waits.
   */
  get abandonable(): boolean {
    return this.session !== null && (this.streamSid !== null || this.streamLive);
  }

  /**
   * Closes an abandoned session (reason `stream_ended`): the call's socket closed without
   * Twilio's `stop` and no new stream came, or its ingest node died. What was said is finished
   * and delivered, and the offsets it held are released.
   */
  async abandon(): Promise<void> {
    if (this.stopping) return this.finishStop();
    if (this.session) await this.close('stream_ended', null, this.deps.now(), this.lastOffset);
  }

  async handle(event: CallEvent, offset: number): Promise<void> {
    this.lastOffset = offset;
    switch (event.type) {
      case 'TranscriptionStartRequested':
        await this.finishStop(); // a start right after a stop (hold, then back): the stop is complete
        return this.start(event, offset);
      case 'TranscriptionStopRequested':
        if (!this.session) return this.answerLateStop(event.data.requestId, offset);
        if (this.stopping) return;
        if (!this.streamLive) return this.close('stop_requested', event.data.requestId, event.occurredAtMs, offset);
        this.stopping = {
          requestId: event.data.requestId,
          occurredAtMs: event.occurredAtMs,
          offset,
          deadlineMs: this.deps.now() + (this.deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS),
        };
        return;
      case 'AudioChunkReceived':
        this.streamLive = true;
        // Received after the stop: everything ingest had before it is in, so the stop completes.
        if (this.stopping && event.occurredAtMs > this.stopping.occurredAtMs) return this.finishStop();
        return this.audio(event.data, event.occurredAtMs, offset);
      case 'StreamStarted':
        this.streamSid = event.data.streamSid;
        this.streamLive = true;
        return;
      case 'StreamEnded':
        if (event.data.streamSid !== this.streamSid && this.streamSid !== null) return;
        this.streamLive = false;
        if (this.stopping) return this.finishStop(); // no more audio will come before the stop
        // Twilio said stop (the call is over): close the session. Otherwise (socket lost,
        // stream replaced) only finish what was said: a new stream may continue the call.
        // A stop ingest received before the start was accepted ended the stream before this
        // session began (the records crossed on their way to the partition): it closes nothing,
        // as if it had come first.
        if (event.data.reason === 'stopped' && event.occurredAtMs >= (this.session?.requestedAtMs ?? 0)) {
          return this.close('stream_ended', null, event.occurredAtMs, offset);
        }
        return this.flushTracks();
      case 'DtmfReceived':
        return;
      default: {
        const never: never = event;
        throw new Error(`unhandled call event ${(never as { type: string }).type}`);
      }
    }
  }

  /** A stop is waiting and its grace period is over: `expireStop()` should run (on the call's chain). */
  stopExpired(nowMs: number): boolean {
    return this.stopping !== null && nowMs >= this.stopping.deadlineMs;
  }

  /** Carries out a waiting stop whose grace period is over (no audio after it came: a dead stream). */
  async expireStop(): Promise<void> {
    if (this.stopping && this.stopExpired(this.deps.now())) await this.finishStop();
  }

  holdOffset(): number | null {
    if (!this.session) return null;
    // A waiting stop holds its own offset: a new owner must replay it (and the late audio after it).
    let hold: number | null = this.stopping?.offset ?? null;
    for (const track of this.session.tracks.values()) {
      const needed = offsetOfSample(track, track.stream.pendingFromSample);
      if (needed !== null) hold = min(hold, needed);
      for (const entry of track.inflight) hold = min(hold, entry.hold);
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
    this.session = this.newSession(event.data, event.occurredAtMs, event.occurredAtMs, true);
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
        startRequestedAtMs: event.occurredAtMs,
      },
    });
  }

  private newSession(start: TranscriptionStartRequested, openedAtMs: number, requestedAtMs: number, fromStart: boolean): Session {
    const recordings = this.deps.recordings;
    return {
      start,
      openedAtMs,
      requestedAtMs,
      tracks: new Map(),
      totals: { customer: { bytes: 0, transcripts: 0 }, agent: { bytes: 0, transcripts: 0 } },
      recording: start.audioRecordingAllowed && recordings ? new SessionRecording(recordings.maxDurationS * RECORDING_SAMPLE_RATE) : null,
      fromStart,
    };
  }

  /** `receivedAtMs`: when ingest received the chunk (its occurredAtMs). */
  private async audio(chunk: AudioChunkReceived, receivedAtMs: number, offset: number): Promise<void> {
    const session = this.session;
    // SPEC §3.2: audio before start-streaming (or after stop) is never transcribed, nor recorded,
    // also when ingest received it before the start but it reached the partition after it.
    if (!session || receivedAtMs < session.requestedAtMs) {
      this.deps.notTranscribed?.(session ? 'received_before_start' : 'not_started');
      return;
    }
    const role = chunk.track === 'inbound' ? session.start.inboundRole : session.start.outboundRole;
    session.recording?.write(role, chunk.streamSid, chunk.timestampMs, chunk.payload);
    let track = session.tracks.get(chunk.track);
    if (track && track.streamSid !== chunk.streamSid) {
      await this.finishTrack(track); // a new media stream: its timestamps start again at 0
      session.tracks.delete(chunk.track);
      track = undefined;
    }
    if (!track) {
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
        inflight: new Set(),
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
    // Taken before the push: the stream's view lags (its VAD is async), which only makes it earlier.
    const hold = offsetOfSample(track, track.stream.pendingFromSample) ?? offset;
    this.chain(track, track.stream.push(audio), hold);
  }

  /** Emits a recognizer result after everything before it, holding its offset until written. */
  private chain(track: TrackState, result: Promise<Utterance[]>, hold: number): void {
    const session = this.session as Session;
    const entry = { hold };
    track.inflight.add(entry);
    track.tail = track.tail.then(async () => {
      try {
        let utterances: Utterance[];
        try {
          utterances = await result;
        } catch (error) {
          this.deps.onError(error, { callSid: this.callSid, stage: 'recognize' });
          return;
        }
        for (const u of utterances) {
          try {
            const speechEndedAtMs = chunkOfSample(track, u.endSample)?.atMs ?? this.deps.now();
            await this.deps.emit.utterance(this.toEvent(session, track, u, speechEndedAtMs));
            session.totals[track.role].transcripts++;
          } catch (error) {
            this.deps.onError(error, { callSid: this.callSid, stage: 'emit' });
          }
        }
      } finally {
        track.inflight.delete(entry);
        trimChunks(track);
      }
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
    const last = track.chunks.at(-1)?.offset ?? 0;
    this.chain(track, track.stream.flush(), offsetOfSample(track, track.stream.pendingFromSample) ?? last);
    await track.tail;
  }

  /**
   * stop-streaming after the session already ended (usually: Twilio's `stop` at hang-up, then
   * the backend's stop-streaming). The API accepted it and waits for a close of its request:
   * answer with the summaries of the session that ended (zeros if this consumer never saw it,
   * e.g. after a takeover), so the caller gets 200 rather than a timeout.
   */
  private async answerLateStop(requestId: string, offset: number): Promise<void> {
    await this.deps.emit.session({
      eventId: nameBasedUuid(`${this.callSid}:closed-already:${requestId}`),
      callSid: this.callSid,
      tenantId: this.tenantId,
      occurredAtMs: this.deps.now(),
      type: 'TranscriptionSessionClosed',
      data: {
        requestId,
        reason: 'stream_ended',
        summaries: this.lastClosed ?? [],
        commandPartition: this.partition,
        commandOffset: offset,
      },
    });
  }

  private async finishStop(): Promise<void> {
    const stopping = this.stopping;
    if (!stopping) return;
    this.stopping = null;
    await this.close('stop_requested', stopping.requestId, stopping.occurredAtMs, stopping.offset);
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
    // Written before the session is reported closed: once stop-streaming answers, the recording is listed.
    if (session.recording) await this.saveRecording(session, session.recording);
    const summaries: SessionSummary[] = (['customer', 'agent'] as const).map((role) => ({
      role,
      streamId: role === 'customer' ? session.start.customerStreamId : session.start.agentStreamId,
      totalAudioBytes: session.totals[role].bytes,
      audioDurationMs: Math.round(session.totals[role].bytes / 8),
      streamingSeconds: Math.max(0, (occurredAtMs - session.openedAtMs) / 1000),
      transcripts: session.totals[role].transcripts,
    }));
    this.lastClosed = summaries;
    await this.deps.emit.session({
      eventId: nameBasedUuid(`${this.callSid}:closed:${session.start.requestId}`),
      callSid: this.callSid,
      tenantId: this.tenantId,
      occurredAtMs: this.deps.now(),
      type: 'TranscriptionSessionClosed',
      data: { requestId, reason, summaries, commandPartition: this.partition, commandOffset: offset },
    });
  }

  private async saveRecording(session: Session, recording: SessionRecording): Promise<void> {
    const recordings = this.deps.recordings;
    if (!recordings) return;
    try {
      const audio = await recording.toWav();
      if (!audio) {
        recordings.written?.('empty'); // no audio arrived during the session: no file
        return;
      }
      if (!session.fromStart) {
        // Restored after a takeover: if an earlier owner already closed this session (it crashed
        // before committing past the stop), its recording covers more than this replay does.
        const id = recordingIdOf(this.callSid, session.start.customerStreamId);
        if ((await recordings.store.list(this.tenantId, this.callSid)).some((r) => r.recordingId === id)) {
          recordings.written?.('kept');
          return;
        }
      }
      await recordings.store.put(
        this.tenantId,
        {
          callSid: this.callSid,
          customerStreamId: session.start.customerStreamId,
          agentStreamId: session.start.agentStreamId,
          durationMs: audio.durationMs,
          mediaStartMs: audio.mediaStartMs,
          complete: session.fromStart,
          truncated: audio.truncated,
          createdAtMs: this.deps.now(),
        },
        audio.wav,
      );
      recordings.written?.(audio.truncated ? 'truncated' : 'written');
    } catch (error) {
      this.deps.onError(error, { callSid: this.callSid, stage: 'recording' });
    }
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
