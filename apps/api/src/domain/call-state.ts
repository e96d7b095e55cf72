import type { CallEvent } from '../../../shared/src/events.js';

/**
 * What the API knows about one call, projected from `earshot.call-events.v1` (decider
 * style: pure `evolve`, `decideStart`, `decideStop`; no I/O, no clock). The API needs it only
 * to answer 404 (not this tenant's call) and 409 (already started / not started) before it
 * publishes a command; the asr consumer, which reads the same partition in log order, has the
 * final say (see apps/api/README.md, "Ordering").
 */
export interface CallState {
  /** The tenant that first touched the call (its stream token, or its start request). */
  readonly tenantId: string;
  readonly streamConnected: boolean;
  readonly streamSid: string | null;
  readonly started: boolean;
  readonly customerStreamId: string | null;
  readonly agentStreamId: string | null;
  /** `occurredAtMs` of the newest event applied: what idle eviction looks at. */
  readonly lastEventAtMs: number;
}

/**
 * The state confirmed by the log plus this node's own accepted commands that the log has
 * not handed back yet. The log's order wins: a confirmed record is applied to `confirmed`
 * and, if it is one of ours, leaves `pending`, so applying it twice is impossible and a
 * command of another node that the log placed before ours is still applied first.
 */
export interface TrackedCall {
  readonly confirmed: CallState | undefined;
  readonly pending: readonly CallEvent[];
}

export const EMPTY_CALL: TrackedCall = { confirmed: undefined, pending: [] };

export function evolve(state: CallState | undefined, event: CallEvent): CallState | undefined {
  // A call belongs to the first tenant seen for it; another tenant's events change nothing.
  if (state && state.tenantId !== event.tenantId) return state;
  const base: CallState = state ?? {
    tenantId: event.tenantId,
    streamConnected: false,
    streamSid: null,
    started: false,
    customerStreamId: null,
    agentStreamId: null,
    lastEventAtMs: event.occurredAtMs,
  };
  const lastEventAtMs = Math.max(base.lastEventAtMs, event.occurredAtMs);
  switch (event.type) {
    case 'AudioChunkReceived':
    case 'DtmfReceived':
      // Media says nothing about ownership or start/stop; callers skip it before getting here.
      return state;
    case 'StreamStarted':
      return { ...base, streamConnected: true, streamSid: event.data.streamSid, lastEventAtMs };
    case 'StreamEnded':
      // A replaced stream's end may arrive after its successor's start: only the current one counts.
      if (base.streamSid !== null && base.streamSid !== event.data.streamSid) return { ...base, lastEventAtMs };
      return { ...base, streamConnected: false, lastEventAtMs };
    case 'TranscriptionStartRequested':
      return {
        ...base,
        started: true,
        customerStreamId: event.data.customerStreamId,
        agentStreamId: event.data.agentStreamId,
        lastEventAtMs,
      };
    case 'TranscriptionStopRequested':
      return { ...base, started: false, lastEventAtMs };
    default:
      return unreachable(event);
  }
}

/** A record read from the log. */
export function observe(call: TrackedCall, event: CallEvent): TrackedCall {
  const pending = call.pending.filter((p) => p.eventId !== event.eventId);
  return { confirmed: evolve(call.confirmed, event), pending };
}

/** One of this node's commands, accepted by the log but not read back yet. */
export function accept(call: TrackedCall, event: CallEvent): TrackedCall {
  return { confirmed: call.confirmed, pending: [...call.pending, event] };
}

export function current(call: TrackedCall): CallState | undefined {
  return call.pending.reduce(evolve, call.confirmed);
}

/** Drops own commands the log never handed back within `maxAgeMs` (they were lost or are far behind). */
export function expirePending(call: TrackedCall, nowMs: number, maxAgeMs: number): TrackedCall {
  const pending = call.pending.filter((p) => nowMs - p.occurredAtMs <= maxAgeMs);
  return pending.length === call.pending.length ? call : { confirmed: call.confirmed, pending };
}

export function isIdle(call: TrackedCall, nowMs: number, maxIdleMs: number): boolean {
  const state = current(call);
  return state === undefined || nowMs - state.lastEventAtMs > maxIdleMs;
}

export type StartDecision = { readonly kind: 'accepted' } | { readonly kind: 'rejected'; readonly reason: 'not_found' | 'already_started' };
export type StopDecision =
  | { readonly kind: 'accepted'; readonly customerStreamId: string; readonly agentStreamId: string }
  | { readonly kind: 'rejected'; readonly reason: 'not_found' | 'not_started' };

/** Start may come before the stream connects (SPEC §3.2), so an unknown call is accepted. */
export function decideStart(state: CallState | undefined, tenantId: string): StartDecision {
  if (state && state.tenantId !== tenantId) return { kind: 'rejected', reason: 'not_found' };
  if (state?.started) return { kind: 'rejected', reason: 'already_started' };
  return { kind: 'accepted' };
}

export function decideStop(state: CallState | undefined, tenantId: string): StopDecision {
  if (!state || state.tenantId !== tenantId) return { kind: 'rejected', reason: 'not_found' };
  if (!state.started || state.customerStreamId === null || state.agentStreamId === null) {
    return { kind: 'rejected', reason: 'not_started' };
  }
  return { kind: 'accepted', customerStreamId: state.customerStreamId, agentStreamId: state.agentStreamId };
}

function unreachable(value: never): never {
  throw new Error(`unhandled call event ${JSON.stringify((value as { type?: unknown }).type)}`);
}
