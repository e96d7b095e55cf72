import { randomUUID } from 'node:crypto';
import type { UtteranceRecognized } from '../../../../shared/src/events.js';
import type { Logger } from '../../../../shared/src/logger.js';
import { Counter, Gauge, type Registry } from '../../../../shared/src/metrics.js';
import type { EventLog, EventLogConsumer } from '../../../../shared/src/ports/event-log.port.js';
import { TOPICS } from '../../../../shared/src/topics.js';

/**
 * Live fan-out of `earshot.utterances.v1` to the browsers watching calls on this API node.
 * Every API node follows the topic from its end (a consumer group of its own, nothing
 * committed) and keeps, per call, the last `backlogPerCall` utterances, so a page opened
 * mid-call (or reconnecting) first gets what it missed.
 *
 * Never blocks: the consumer hands each utterance to every watcher synchronously; a watcher
 * is a function that queues bytes on its own response (see live.routes.ts), and one that
 * cannot keep up is cut off there, so a slow browser costs memory only up to its own bound
 * and never delays the others or the consumer.
 */
export interface LiveUtterance {
  readonly utteranceId: string;
  readonly externalId: string;
  readonly role: 'customer' | 'agent';
  readonly senderExternalId: string;
  /** Redacted text when the session produced it, else the unredacted text; '' when the model heard nothing. */
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
  /** When the utterance event was produced (ISO 8601). */
  readonly createdTimestamp: string;
  /** End of speech to utterance event: occurredAtMs - speechEndedAtMs. */
  readonly latencyMs: number;
  readonly language: string;
}

/** A watcher gets each new utterance of its call; returns false once it has given up (then it is removed). */
export type Watcher = (utterance: LiveUtterance) => boolean;

export interface LiveFeedOptions {
  readonly log: EventLog;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly clock?: () => number;
  /** Utterances kept per call for late watchers. */
  readonly backlogPerCall?: number;
  /** Calls whose backlog is kept (least recently updated forgotten first). */
  readonly maxCalls?: number;
  /** A call's backlog is forgotten this long after its last utterance. */
  readonly idleMs?: number;
}

interface CallFeed {
  readonly backlog: LiveUtterance[];
  readonly ids: Set<string>;
  readonly watchers: Set<Watcher>;
  lastAtMs: number;
}

export class LiveFeed {
  private readonly calls = new Map<string, CallFeed>();
  private readonly clock: () => number;
  private readonly backlogPerCall: number;
  private readonly maxCalls: number;
  private readonly idleMs: number;
  private readonly metrics: LiveMetrics;
  private consumer: EventLogConsumer | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: LiveFeedOptions) {
    this.clock = options.clock ?? Date.now;
    this.backlogPerCall = options.backlogPerCall ?? 200;
    this.maxCalls = options.maxCalls ?? 10_000;
    this.idleMs = options.idleMs ?? 60 * 60_000;
    this.metrics = liveMetrics(options.metrics);
  }

  /** Joins the topic at its end; resolves once the consumer runs. */
  async start(): Promise<void> {
    this.consumer = this.options.log.createConsumer({
      groupId: `earshot-api-live-${randomUUID()}`,
      topics: [TOPICS.utterances],
      fromBeginning: false,
    });
    await this.consumer.run(async (batch) => {
      for (const record of batch.records) this.publish(record.value as UtteranceRecognized);
    });
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  get liveMetrics(): LiveMetrics {
    return this.metrics;
  }

  /** One utterance from the log: kept in its call's backlog and handed to its watchers. */
  publish(event: UtteranceRecognized): void {
    const key = callKey(event.tenantId, event.callSid);
    let call = this.calls.get(key);
    if (call) {
      this.calls.delete(key); // re-inserted below: the map's order is least recently updated first
    } else {
      call = { backlog: [], ids: new Set(), watchers: new Set(), lastAtMs: 0 };
    }
    call.lastAtMs = this.clock();
    this.calls.set(key, call);
    this.evictOverflow();
    // A replay after an asr crash can deliver an utterance twice (same id): show it once.
    if (call.ids.has(event.utteranceId)) return;
    const utterance = toLive(event);
    call.backlog.push(utterance);
    call.ids.add(event.utteranceId);
    while (call.backlog.length > this.backlogPerCall) call.ids.delete((call.backlog.shift() as LiveUtterance).utteranceId);
    this.metrics.utterances.inc();
    for (const watcher of call.watchers) {
      if (!watcher(utterance)) call.watchers.delete(watcher);
    }
  }

  /**
   * Watches one call of one tenant: the utterances kept so far (those after `afterId` when it
   * is in the backlog, else all of them), then every new one through `watcher`.
   */
  watch(tenantId: string, callSid: string, watcher: Watcher, afterId?: string): { backlog: LiveUtterance[]; stop(): void } {
    const key = callKey(tenantId, callSid);
    let call = this.calls.get(key);
    if (!call) {
      call = { backlog: [], ids: new Set(), watchers: new Set(), lastAtMs: this.clock() };
      this.calls.set(key, call);
      this.evictOverflow();
    }
    const feed = call;
    feed.watchers.add(watcher);
    const seen = afterId === undefined ? -1 : feed.backlog.findIndex((u) => u.utteranceId === afterId);
    return { backlog: feed.backlog.slice(seen + 1), stop: () => feed.watchers.delete(watcher) };
  }

  /** How many utterances of a call this node holds (shown in the call list). */
  count(tenantId: string, callSid: string): number {
    return this.calls.get(callKey(tenantId, callSid))?.backlog.length ?? 0;
  }

  /** Forgets calls idle past `idleMs` that nobody watches. */
  sweep(): void {
    const now = this.clock();
    for (const [key, call] of this.calls) if (call.watchers.size === 0 && now - call.lastAtMs > this.idleMs) this.calls.delete(key);
  }

  private evictOverflow(): void {
    if (this.calls.size <= this.maxCalls) return;
    for (const [key, call] of this.calls) {
      if (this.calls.size <= this.maxCalls) break;
      if (call.watchers.size === 0) this.calls.delete(key);
    }
  }
}

const callKey = (tenantId: string, callSid: string): string => `${tenantId}\n${callSid}`;

function toLive(event: UtteranceRecognized): LiveUtterance {
  return {
    utteranceId: event.utteranceId,
    externalId: event.callSid,
    role: event.role,
    senderExternalId: event.senderExternalId,
    text: event.text ?? event.unredactedText ?? '',
    startMs: event.startMs,
    endMs: event.endMs,
    createdTimestamp: new Date(event.occurredAtMs).toISOString(),
    latencyMs: Math.max(0, event.occurredAtMs - event.speechEndedAtMs),
    language: event.language,
  };
}

export interface LiveMetrics {
  readonly utterances: Counter<never>;
  readonly streams: Gauge<never>;
  readonly streamsRefused: Counter<'reason'>;
  readonly slowDropped: Counter<never>;
  readonly logins: Counter<'outcome'>;
}

/** Get-or-create, so a second API on one registry (tests) reuses them. */
export function liveMetrics(registry: Registry): LiveMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    utterances:
      existing('earshot_api_live_utterances_total') ??
      new Counter({
        name: 'earshot_api_live_utterances_total',
        help: 'Utterances the live page feed of this API node read from the log (duplicates excluded).',
        registers: [registry],
      }),
    streams:
      existing('earshot_api_live_streams') ??
      new Gauge({ name: 'earshot_api_live_streams', help: 'Live page event streams open on this API node.', registers: [registry] }),
    streamsRefused:
      existing('earshot_api_live_streams_refused_total') ??
      new Counter({
        name: 'earshot_api_live_streams_refused_total',
        help: 'Live event streams refused with 429: reason "node" (EARSHOT_LIVE_MAX_STREAMS) or "app" (EARSHOT_LIVE_MAX_STREAMS_PER_APP).',
        labelNames: ['reason'],
        registers: [registry],
      }),
    slowDropped:
      existing('earshot_api_live_slow_clients_total') ??
      new Counter({
        name: 'earshot_api_live_slow_clients_total',
        help: 'Live event streams cut off because the browser did not read fast enough (it reconnects and gets the backlog).',
        registers: [registry],
      }),
    logins:
      existing('earshot_api_live_logins_total') ??
      new Counter({
        name: 'earshot_api_live_logins_total',
        help: 'Live page logins by outcome: ok, refused (wrong credentials), limited (too many failures from the address).',
        labelNames: ['outcome'],
        registers: [registry],
      }),
  };
}
