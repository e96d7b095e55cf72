import { createHmac, randomUUID } from 'node:crypto';
import type { EventLog } from '../ports/event-log.port.js';
import { TOPICS } from '../topics.js';

/**
 * Audit records (SPEC §10) on `earshot.audit.v1`, keyed by app id: the API's control and data
 * accesses, and app changes made with `earshot apps`. Call SIDs and client addresses are
 * stored only as keyed hashes (HMAC-SHA-256 under a key derived from EARSHOT_SECRETS_KEY), so the
 * audit topic can be retained for 30 days without holding call identifiers. Keyed, because an
 * IPv4 address has only 2^32 values: its plain SHA-256 could be reversed by trying them all.
 * The same key on every node gives the same hash, so one call's records can still be found
 * (`earshot audit-hash <value>` prints it).
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

/** The HKDF label of the audit hash key (CredentialBox.derive). */
export const AUDIT_HASH_KEY_LABEL = 'earshot audit hashes';

export const auditHash = (key: Uint8Array, value: string): string => createHmac('sha256', key).update(value, 'utf8').digest('hex');

export class AuditTrail {
  constructor(
    private readonly log: EventLog,
    /** `credentials.derive(AUDIT_HASH_KEY_LABEL)`. */
    private readonly hashKey: Uint8Array,
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
          callSidHash: entry.callSid === null ? null : auditHash(this.hashKey, entry.callSid),
          clientAddressHash: entry.clientAddress === null ? null : auditHash(this.hashKey, entry.clientAddress),
          occurredAtMs: this.clock(),
        },
      },
    ]);
  }
}
