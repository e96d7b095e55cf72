import { isEarshotError } from '../../shared/src/errors.js';
import type { DeliveryAttempted } from '../../shared/src/events.js';
import type { Logger } from '../../shared/src/logger.js';
import type { EventLog } from '../../shared/src/ports/event-log.port.js';
import { TOPICS } from '../../shared/src/topics.js';

/**
 * Writes DeliveryAttempted events to earshot.deliveries.v1 (key: Call SID). One produce in
 * flight; events recorded meanwhile go together in the next one, so a busy dispatcher makes
 * few large produces. A retriable log error is retried until it succeeds (the messages'
 * offsets stay uncommitted meanwhile), so no outcome is lost.
 */
export class DeliveryRecorder {
  private queue: { event: DeliveryAttempted; written: () => void; failed: (e: unknown) => void }[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
  ) {}

  record(event: DeliveryAttempted): Promise<void> {
    return new Promise((written, failed) => {
      this.queue.push({ event, written, failed });
      this.running ??= this.loop().finally(() => {
        this.running = null;
      });
    });
  }

  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopping = true;
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 500);
      for (let attempt = 0; ; attempt++) {
        try {
          await this.log.produce(
            TOPICS.deliveries,
            batch.map(({ event }) => ({ key: event.callSid, value: event })),
          );
          for (const b of batch) b.written();
          break;
        } catch (error) {
          if (!isEarshotError(error) || !error.retriable || (this.stopping && attempt >= 5)) {
            for (const b of batch) b.failed(error);
            break;
          }
          this.logger.warn({ err: error, attempt }, 'webhooks.record_retry');
          await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
        }
      }
    }
  }
}
