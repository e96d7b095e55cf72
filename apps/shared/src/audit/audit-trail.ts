import { createHash, randomUUID } from 'node:crypto';
import type { EventLog } from '../ports/event-log.port.js';
import { TOPICS } from '../topics.js';

/**
 * Audit records (SPEC §10) on `earshot.audit.v1`, keyed by app id: the API's control and data
 * accesses, and app changes made with `earshot apps`. Call SIDs and
 * client addresses are stored only as SHA-256 hex digests, so the audit topic can be
 * retained for 30 days without holding call identifiers.
 */
export type AuditAction =
  | 'stream_url.issued'
  | 'transcription.start'
  | 'transcription.stop'
  | 'recording.downloaded'
  | 'feed_file.downloaded'
  | 'messages.read'
  | 'live.watched'
  // App changes (`earshot apps ...`), written by AppAdmin beside the apps topic record.
  | 'app.created'
  | 'app.secret_rotated'
  | 'app.disabled'
  | 'app.webhook_set'
  | 'app.twilio_auth_token_set';

export interface AuditEntry {
  readonly appId: string;
  readonly action: AuditAction;
  readonly requestId: string;
  readonly callSid: string | null;
  readonly clientAddress: string | null;
}

export const sha256Hex = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

export class AuditTrail {
  constructor(
    private readonly log: EventLog,
    private readonly clock: () => number = Date.now,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.log.produce(TOPICS.audit, [
      {
        key: entry.appId,
        value: {
          eventId: randomUUID(),
          appId: entry.appId,
          action: entry.action,
          requestId: entry.requestId,
          callSidHash: entry.callSid === null ? null : sha256Hex(entry.callSid),
          clientAddressHash: entry.clientAddress === null ? null : sha256Hex(entry.clientAddress),
          occurredAtMs: this.clock(),
        },
      },
    ]);
  }
}
