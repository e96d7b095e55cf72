import { isEarshotError } from '../../../shared/src/errors.js';
import type { CallEvent, SessionEvent, UtteranceRecognized } from '../../../shared/src/events.js';
import { Counter, Gauge, Histogram } from '../../../shared/src/metrics.js';
import type { EventLogConsumer, LogRecord, RecordBatch, TopicPartition } from '../../../shared/src/ports/event-log.port.js';
import type { RecordingStore } from '../../../shared/src/ports/recording-store.port.js';
import type { Runtime } from '../../../shared/src/runtime.js';
import { TOPICS } from '../../../shared/src/topics.js';
import { DEFAULT_RULES } from '../domain/redaction.js';
import type { SpeechEngine } from '../engine/speech-engine.port.js';
import { CallTranscriber, type Emitter, type NotTranscribedReason, type RecordingOutcome } from './call-transcriber.js';
import { restoreOpenSessions } from './restore-sessions.js';

/**
 * The asr app: one consumer group over earshot.call-events.v1. Each assigned partition holds
 * the CallTranscribers of its calls; offsets are committed only up to the oldest audio still
 * needed (SPEC §5), on every batch and on a timer (utterances finish between batches).
 */
export const ASR_GROUP = 'earshot-asr';
const COMMIT_EVERY_MS = 1000;
const IDLE_CALL_MS = 15 * 60_000;

/**
 * A call's events are handled in order on a chain of their own, so a call that waits (a stop
 * finishing its last words, a session event being written) never holds up the other calls of
 * its partition. `pending` holds the offsets taken but not yet handled: the partition commits
 * no further than the oldest of them.
 */
interface CallEntry {
  readonly transcriber: CallTranscriber;
  lastSeenMs: number;
  /** occurredAtMs of the call's last record: compared with the partition's clock for abandoned sessions. */
  lastEventMs: number;
  chain: Promise<void>;
  readonly pending: number[];
  /** Set when handling an event failed: the call's offsets stay held until a restart replays them. */
  failed: boolean;
}

// Events taken but not yet handled, per partition, beyond which reading waits.
const MAX_PENDING_PER_PARTITION = 5000;

interface PartitionState {
  readonly partition: number;
  readonly calls: Map<string, CallEntry>;
  readonly ready: Promise<void>;
  lastOffset: number | null;
  committed: number | null;
  /**
   * The latest occurredAtMs read on the partition. Abandoned sessions are judged on this clock,
   * not the wall clock: while the partition stalls (a Kafka outage, lag) it stops too, so a
   * session is never closed just because its audio has not been read yet.
   */
  eventClockMs: number;
  /** A commit in flight (one at a time per partition), and whether another was asked for meanwhile. */
  committing: boolean;
  commitAgain: boolean;
}

export interface AsrApp {
  stop(): Promise<void>;
}

export async function startAsr(
  runtime: Runtime,
  engine: SpeechEngine,
  options: { groupId?: string; recordings?: RecordingStore } = {},
): Promise<AsrApp> {
  const { eventLog, logger } = runtime;
  const log = logger.child({ app: 'asr' });
  const metrics = asrMetrics(runtime);
  const sessionIdleMs = runtime.config.EARSHOT_ASR_SESSION_IDLE_MS;
  const partitions = new Map<number, PartitionState>();
  let stopping = false;

  const emit: Emitter = {
    utterance: (event: UtteranceRecognized) =>
      produceWithRetry(() => eventLog.produce(TOPICS.utterances, [{ key: event.callSid, value: event }])).then(() => {
        metrics.utterances.inc({ role: event.role });
        metrics.latency.observe(Math.max(0, event.occurredAtMs - event.speechEndedAtMs) / 1000);
      }),
    session: (event: SessionEvent) => produceWithRetry(() => eventLog.produce(TOPICS.sessions, [{ key: event.callSid, value: event }])),
  };

  // Kafka being away must not lose an utterance: retry until it is written or we shut down.
  async function produceWithRetry(produce: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await produce();
      } catch (error) {
        if (stopping && attempt > 5) throw error;
        if (!isEarshotError(error) || !error.retriable) throw error;
        log.warn({ err: error, attempt }, 'asr.produce_retry');
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  const transcriberDeps = {
    engine,
    stopGraceMs: runtime.config.EARSHOT_ASR_STOP_GRACE_MS,
    emit,
    redactionRules: () => DEFAULT_RULES,
    now: Date.now,
    onError: (error: unknown, context: Record<string, unknown>) => {
      metrics.errors.inc({ stage: String(context.stage) });
      log.error({ err: error, ...context }, 'asr.background_failure');
    },
    notTranscribed: (reason: NotTranscribedReason) => metrics.notTranscribed.inc({ reason }),
    recordings: options.recordings && {
      store: options.recordings,
      maxDurationS: runtime.config.EARSHOT_RECORDINGS_MAX_DURATION_S,
      written: (outcome: RecordingOutcome) => metrics.recordings.inc({ outcome }),
    },
  };

  const consumer: EventLogConsumer = eventLog.createConsumer({
    groupId: options.groupId ?? ASR_GROUP,
    topics: [TOPICS.callEvents],
    onAssignment: (assignment) => reassign(assignment),
  });

  function reassign(assignment: readonly TopicPartition[]): void {
    const mine = new Set(assignment.map((tp) => tp.partition));
    for (const p of [...partitions.keys()]) if (!mine.has(p)) partitions.delete(p); // revoked: another consumer replays it
    for (const p of mine) {
      if (partitions.has(p)) continue;
      const state: PartitionState = {
        partition: p,
        calls: new Map(),
        ready: Promise.resolve(),
        lastOffset: null,
        committed: null,
        eventClockMs: 0,
        committing: false,
        commitAgain: false,
      };
      (state as { ready: Promise<void> }).ready = (async () => {
        const committed = await consumer.committed({ topic: TOPICS.callEvents.name, partition: p });
        state.committed = committed;
        for (const open of await restoreOpenSessions(eventLog, p, committed)) {
          const transcriber = new CallTranscriber(open.callSid, open.tenantId, p, transcriberDeps);
          transcriber.restore(open.start, open.openedAtMs, open.requestedAtMs);
          const entry = newEntry(transcriber);
          // If the call never sends another record (it died with the previous owner), the
          // session is abandoned once the partition's clock is past its opening + the idle time.
          entry.lastEventMs = open.openedAtMs;
          state.calls.set(open.callSid, entry);
        }
        if (state.calls.size > 0) log.info({ partition: p, restored: state.calls.size, committed }, 'asr.sessions_restored');
      })();
      partitions.set(p, state);
    }
    metrics.partitions.set(partitions.size);
    // Which node owns which calls is operational knowledge (and what fault tests look up).
    log.info({ partitions: [...mine].sort((a, b) => a - b) }, 'asr.partitions_assigned');
  }

  async function handle(batch: RecordBatch): Promise<void> {
    const state = partitions.get(batch.partition);
    if (!state) return; // revoked while the batch was in flight
    await state.ready;
    for (const record of batch.records as LogRecord<CallEvent>[]) {
      // Backpressure: when the model's queue fills, stop reading (lag grows, nothing is lost)
      // rather than hand it utterances it would refuse.
      while (engine.stats().queued >= engine.stats().maxQueue * 0.75 && !stopping) {
        metrics.throttled.inc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const event = record.value;
      let entry = state.calls.get(event.callSid);
      if (!entry) {
        entry = newEntry(new CallTranscriber(event.callSid, event.tenantId, state.partition, transcriberDeps));
        state.calls.set(event.callSid, entry);
      }
      entry.lastSeenMs = Date.now();
      entry.lastEventMs = event.occurredAtMs;
      if (event.occurredAtMs > state.eventClockMs) state.eventClockMs = event.occurredAtMs;
      enqueue(entry, event, record.offset);
      state.lastOffset = record.offset;
      while (pendingIn(state) > MAX_PENDING_PER_PARTITION && !stopping) await oldestChain(state);
    }
    // Not awaited: kafkajs hands over a fetch's batches one partition at a time, so a commit
    // round trip per batch held up the next partition's audio (p95 audio-to-asr 200 → 500 ms
    // at 18 calls, capacity bench). Replay after a crash is idempotent (deterministic ids).
    commitSoon(state);
  }

  /**
   * One commit in flight per partition; asked again meanwhile, it runs once more after.
   * Failures are logged, never thrown: see the webhooks dispatcher (kafkajs does not restart a
   * consumer that crashed on a non-retriable error); the timer commits again within a second.
   */
  function commitSoon(state: PartitionState): void {
    if (state.committing) {
      state.commitAgain = true;
      return;
    }
    state.committing = true;
    commit(state)
      .catch((error) => log.warn({ err: error, partition: state.partition }, 'asr.commit_failed'))
      .finally(() => {
        state.committing = false;
        if (state.commitAgain) {
          state.commitAgain = false;
          commitSoon(state);
        }
      });
  }

  function newEntry(transcriber: CallTranscriber): CallEntry {
    return { transcriber, lastSeenMs: Date.now(), lastEventMs: 0, chain: Promise.resolve(), pending: [], failed: false };
  }

  function enqueue(entry: CallEntry, event: CallEvent, offset: number): void {
    entry.pending.push(offset);
    entry.chain = entry.chain.then(async () => {
      if (entry.failed) return;
      try {
        await entry.transcriber.handle(event, offset);
        entry.pending.shift();
      } catch (error) {
        entry.failed = true; // keep its offsets held: a restart replays them
        metrics.errors.inc({ stage: 'handle' });
        log.error({ err: error, callSid: event.callSid, offset }, 'asr.call_failed');
      }
    });
  }

  /** A stop that waited its grace period for late audio in vain completes, in order with the call's events. */
  function expireStop(entry: CallEntry): void {
    onChain(entry, () => entry.transcriber.expireStop());
  }

  /** Runs work of the timer's on the call's chain, after the events taken so far. */
  function onChain(entry: CallEntry, work: () => Promise<void>): void {
    entry.chain = entry.chain.then(async () => {
      if (entry.failed) return;
      try {
        await work();
      } catch (error) {
        entry.failed = true;
        metrics.errors.inc({ stage: 'handle' });
        log.error({ err: error, callSid: entry.transcriber.callSid }, 'asr.call_failed');
      }
    });
  }

  const pendingIn = (state: PartitionState): number => [...state.calls.values()].reduce((n, c) => n + c.pending.length, 0);
  const oldestChain = (state: PartitionState): Promise<void> =>
    Promise.race([...state.calls.values()].filter((c) => c.pending.length > 0).map((c) => c.chain));

  async function commit(state: PartitionState): Promise<void> {
    if (state.lastOffset === null || partitions.get(state.partition) !== state) return;
    let safe = state.lastOffset + 1;
    for (const { transcriber, pending } of state.calls.values()) {
      const hold = transcriber.holdOffset();
      if (hold !== null && hold < safe) safe = hold;
      if (pending.length > 0 && (pending[0] as number) < safe) safe = pending[0] as number;
    }
    if (state.committed !== null && safe <= state.committed) return;
    await consumer.commit([{ topic: TOPICS.callEvents.name, partition: state.partition, offset: safe }]);
    state.committed = safe;
  }

  const timer = setInterval(() => {
    const now = Date.now();
    for (const state of partitions.values()) {
      for (const [callSid, entry] of state.calls) {
        if (entry.transcriber.stopExpired(now)) expireStop(entry);
        const quietMs = state.eventClockMs - entry.lastEventMs;
        if (entry.lastEventMs > 0 && quietMs > sessionIdleMs && entry.pending.length === 0 && entry.transcriber.abandonable) {
          entry.lastEventMs = state.eventClockMs; // once: the close is on its way
          metrics.abandoned.inc();
          log.info({ callSid, quietMs }, 'asr.session_abandoned');
          onChain(entry, () => entry.transcriber.abandon());
        }
        if (!entry.transcriber.started && entry.pending.length === 0 && now - entry.lastSeenMs > IDLE_CALL_MS) state.calls.delete(callSid);
      }
      commitSoon(state);
    }
    metrics.calls.set([...partitions.values()].reduce((n, s) => n + s.calls.size, 0));
  }, COMMIT_EVERY_MS);
  timer.unref();

  await consumer.run(handle);
  log.info({ engine: engine.name, model: engine.model }, 'asr.started');

  return {
    async stop() {
      stopping = true;
      clearInterval(timer);
      // Finish what was said (utterances in progress are flushed by stop commands; here we
      // only wait for queued text), write it, commit, and leave the group.
      await Promise.all([...partitions.values()].flatMap((s) => [...s.calls.values()].map((c) => c.chain)));
      await Promise.all([...partitions.values()].flatMap((s) => [...s.calls.values()].map((c) => c.transcriber.drain())));
      for (const state of partitions.values()) await commit(state).catch(() => {});
      await consumer.stop();
    },
  };
}

function asrMetrics(runtime: Runtime) {
  const registers = [runtime.metrics];
  return {
    utterances: new Counter({ name: 'earshot_asr_utterances_total', help: 'Utterances recognized', labelNames: ['role'], registers }),
    errors: new Counter({
      name: 'earshot_asr_errors_total',
      help: 'Failures of recognition or of writing results',
      labelNames: ['stage'],
      registers,
    }),
    latency: new Histogram({
      name: 'earshot_asr_end_of_speech_to_utterance_seconds',
      help: 'From the arrival of the audio that ends an utterance to its event being written',
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3, 5],
      registers,
    }),
    throttled: new Counter({
      name: 'earshot_asr_throttle_waits_total',
      help: 'Pauses in reading audio because the model queue was full',
      registers,
    }),
    recordings: new Counter({
      name: 'earshot_asr_recordings_total',
      help: 'Session recordings (audioRecordingAllowed) by outcome: written, truncated (past the max duration), empty (no audio), kept (a replay closed an already recorded session); failures count in earshot_asr_errors_total{stage="recording"}',
      labelNames: ['outcome'],
      registers,
    }),
    notTranscribed: new Counter({
      name: 'earshot_asr_chunks_not_transcribed_total',
      help: 'Audio chunks read but not transcribed: not_started (no session: before start-streaming or after stop), received_before_start (ingest received it before the start was accepted; it reached the log after the start)',
      labelNames: ['reason'],
      registers,
    }),
    abandoned: new Counter({
      name: 'earshot_asr_sessions_abandoned_total',
      help: 'Sessions closed because their media stream was gone (no stop, no new stream) for EARSHOT_ASR_SESSION_IDLE_MS',
      registers,
    }),
    partitions: new Gauge({ name: 'earshot_asr_partitions', help: 'call-events partitions owned', registers }),
    calls: new Gauge({ name: 'earshot_asr_calls', help: 'Calls with state in this consumer', registers }),
  };
}
