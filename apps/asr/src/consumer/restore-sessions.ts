import type { SessionEvent, TranscriptionStartRequested } from '../../../shared/src/events.js';
import type { EventLog } from '../../../shared/src/ports/event-log.port.js';
import { readToEnd } from '../../../shared/src/read-to-end.js';
import { TOPICS } from '../../../shared/src/topics.js';

export interface OpenSession {
  readonly callSid: string;
  readonly tenantId: string;
  readonly start: TranscriptionStartRequested;
  readonly openedAtMs: number;
  /** The start command's time (0: unknown): audio received before it is not transcribed. */
  readonly requestedAtMs: number;
}

/**
 * The sessions that were open at `committedOffset` of a call-events partition: those whose
 * start command lies before it and whose stop (or end) does not. A new owner of the partition
 * replays from the committed offset, so it will not see those start commands again.
 */
export function openSessionsAt(events: readonly SessionEvent[], partition: number, committedOffset: number): OpenSession[] {
  const latest = new Map<string, { offset: number; open: OpenSession | null }>();
  for (const event of events) {
    const { commandPartition, commandOffset } = event.data;
    if (commandPartition !== partition || commandOffset < 0 || commandOffset >= committedOffset) continue;
    const current = latest.get(event.callSid);
    if (current && current.offset > commandOffset) continue;
    latest.set(event.callSid, {
      offset: commandOffset,
      open:
        event.type === 'TranscriptionSessionOpened' && event.data.start
          ? {
              callSid: event.callSid,
              tenantId: event.tenantId,
              start: event.data.start,
              openedAtMs: event.data.startRequestedAtMs || event.occurredAtMs,
              requestedAtMs: event.data.startRequestedAtMs,
            }
          : null,
    });
  }
  return [...latest.values()].flatMap((v) => (v.open ? [v.open] : []));
}

export async function restoreOpenSessions(log: EventLog, partition: number, committedOffset: number | null): Promise<OpenSession[]> {
  if (committedOffset === null || committedOffset === 0) return [];
  const records = await readToEnd(log, TOPICS.sessions);
  return openSessionsAt(
    records.map((r) => r.value),
    partition,
    committedOffset,
  );
}
