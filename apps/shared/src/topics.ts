import type { AppState, AuditRecorded, CallEvent, DeliveryAttempted, SessionEvent, UtteranceRecognized } from './events.js';

/**
 * Every topic of the event log, with the Avro record type (a file in `schemas/`) of its
 * values. Names follow `earshot.<stream>.v<N>`; a breaking change gets a new topic.
 * `embeddedStorage` says whether embedded mode keeps the topic on disk (state that must
 * survive a restart) or only in memory (audio: hours of retention, useless after a restart).
 */
export interface TopicSpec<T = unknown> {
  readonly name: string;
  readonly schema: string;
  /** Whether the record's `data` field is a union of event records (emmett-style `{type, data}`). */
  readonly envelope: boolean;
  readonly retentionMs: number | null;
  readonly compacted: boolean;
  readonly embeddedStorage: 'memory' | 'file';
  /** Phantom field so a topic carries its value type; never set at run time. */
  readonly __value?: T;
}

export type TopicValue<S> = S extends TopicSpec<infer T> ? T : never;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const TOPICS = {
  callEvents: {
    name: 'earshot.call-events.v1',
    schema: 'CallEvent',
    envelope: true,
    retentionMs: 6 * HOUR,
    compacted: false,
    embeddedStorage: 'memory',
  } as TopicSpec<CallEvent>,
  utterances: {
    name: 'earshot.utterances.v1',
    schema: 'UtteranceRecognized',
    envelope: false,
    retentionMs: 7 * DAY,
    compacted: false,
    embeddedStorage: 'file',
  } as TopicSpec<UtteranceRecognized>,
  sessions: {
    name: 'earshot.sessions.v1',
    schema: 'SessionEvent',
    envelope: true,
    retentionMs: 7 * DAY,
    compacted: false,
    embeddedStorage: 'file',
  } as TopicSpec<SessionEvent>,
  apps: {
    name: 'earshot.apps.v1',
    schema: 'AppState',
    envelope: true,
    retentionMs: null,
    compacted: true,
    embeddedStorage: 'file',
  } as TopicSpec<AppState>,
  deliveries: {
    name: 'earshot.deliveries.v1',
    schema: 'DeliveryAttempted',
    envelope: false,
    retentionMs: 7 * DAY,
    compacted: false,
    embeddedStorage: 'file',
  } as TopicSpec<DeliveryAttempted>,
  audit: {
    name: 'earshot.audit.v1',
    schema: 'AuditRecorded',
    envelope: false,
    retentionMs: 30 * DAY,
    compacted: false,
    embeddedStorage: 'file',
  } as TopicSpec<AuditRecorded>,
} as const;

export const ALL_TOPICS: readonly TopicSpec[] = Object.values(TOPICS);

/** The same topic under another name (tests use a fresh random topic each). */
export function renamedTopic<T>(spec: TopicSpec<T>, name: string): TopicSpec<T> {
  return { ...spec, name };
}
