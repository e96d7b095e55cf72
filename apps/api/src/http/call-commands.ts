import { randomUUID } from 'node:crypto';
import type { AuditAction, AuditTrail } from '../../../shared/src/audit/audit-trail.js';
import type { CallEvent, CallEventPayload } from '../../../shared/src/events.js';
import type { Logger } from '../../../shared/src/logger.js';
import type { EventLog } from '../../../shared/src/ports/event-log.port.js';
import { TOPICS } from '../../../shared/src/topics.js';
import type { ApiMetrics } from '../api-metrics.js';
import type { CallTracker } from '../consumer/call-tracker.js';
import type { SessionWaiter } from '../consumer/session-waiter.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';

/**
 * What start- and stop-streaming share: the call-state projection, publishing a command to
 * `earshot.call-events.v1` (key: Call SID, so it lands in the call's partition, in order
 * with its audio), and the audit record written after the command took effect.
 */
export interface CallCommandDeps {
  readonly log: EventLog;
  readonly tracker: CallTracker;
  readonly audit: AuditTrail;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  /** Delivers the asr consumer's session summaries to stop-streaming. */
  readonly sessions: SessionWaiter;
  readonly stopTimeoutMs: number;
}

/** Same answer for a call nobody has and another tenant's call: nothing leaks. */
export const callNotFound = (callSid: string): ApiError => new ApiError(404, `call ${callSid} not found`);

export function requireCallState(deps: CallCommandDeps): void {
  if (!deps.tracker.ready) {
    throw new ApiError(503, 'call state is still being loaded from the event log; retry shortly', { retryAfterS: 1 });
  }
}

/** Publishes a command and records it in the local view once the log has accepted it. */
export async function publishCommand(
  deps: CallCommandDeps,
  call: { callSid: string; tenantId: string },
  payload: CallEventPayload,
): Promise<CallEvent> {
  const event = {
    eventId: randomUUID(),
    callSid: call.callSid,
    tenantId: call.tenantId,
    occurredAtMs: deps.clock(),
    ...payload,
  } as CallEvent;
  await deps.log.produce(TOPICS.callEvents, [{ key: call.callSid, value: event }]);
  deps.tracker.accepted(event);
  deps.metrics.commands.inc({ command: payload.type === 'TranscriptionStartRequested' ? 'start' : 'stop' });
  return event;
}

/**
 * The command has taken effect: failing the response now would make the client retry into a
 * 409. A lost audit record is logged (without the call id) and counted instead.
 */
export async function auditCommand(deps: CallCommandDeps, ctx: ApiContext, action: AuditAction, callSid: string): Promise<void> {
  const appId = ctx.state.tenant?.apiId ?? 'unknown';
  try {
    await deps.audit.record({ appId, action, requestId: ctx.state.requestId, callSid, clientAddress: ctx.ip });
  } catch (error) {
    deps.metrics.auditFailures.inc();
    deps.logger.error({ err: error, requestId: ctx.state.requestId, appId, action }, 'api.audit_failed');
  }
}
