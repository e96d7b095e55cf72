import type { EventLog } from './ports/event-log.port.js';
import { TOPICS } from './topics.js';

/** How long a readiness probe waits for the event log. */
export const PROBE_TIMEOUT_MS = 2000;

/** Readiness: the event log answers a cheap metadata request (end offsets) within the probe timeout. */
export async function eventLogReachable(log: EventLog, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const probe = log.endOffsets(TOPICS.callEvents.name).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
