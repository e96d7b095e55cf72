import { z } from 'zod';
import type { AuditTrail } from '../../../../shared/src/audit/audit-trail.js';
import { isEarshotError } from '../../../../shared/src/errors.js';
import type { StoredUtterance, TranscriptStore } from '../../../../shared/src/ports/transcript-store.port.js';
import { CALL_SID_PATTERN } from '../../domain/transcription-rules.js';
import { tenantOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { validate } from '../validation.js';
import { isoTime } from './iso-time.js';

/**
 * The after-call messages API (SPEC §3.4): every utterance of a call from the transcript
 * store, in time order, at most 1,000, no paging. Tenant-scoped by the store: another app's
 * call reads exactly like a call that does not exist, and both answer 200 with empty `items`
 * (the call may simply not have said anything yet; a 404 would also tell another tenant
 * nothing, but an empty list needs no special case in clients). Audited (`messages.read`)
 * before the text is sent; no audit record, no text (503).
 */
export interface MessagesRouteDeps {
  readonly store: TranscriptStore;
  readonly audit: AuditTrail;
}

export const MESSAGES_PATH = '/conversation/v1/conversation/messages';
export const MESSAGES_LIMIT = 1000;

export const MessagesQuery = z.object({
  externalId: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be one Twilio Call SID') })
    .regex(CALL_SID_PATTERN, { error: "must be a Twilio Call SID: 'CA' followed by 32 lowercase hex digits" })
    .describe('The Twilio Call SID of the call.'),
});

export const Message = z.object({
  text: z.string().describe('What was said, in the redaction mode that was in force when it was transcribed.'),
  sender: z.object({
    role: z.enum(['customer', 'agent']),
    externalId: z.string().describe('The customerId or agentId given to start-streaming.'),
  }),
  messageId: z.string().describe('The utterance’s event id: stable, the same in webhooks and the feed.'),
  createdTimestamp: z.iso.datetime().describe('When the utterance was transcribed (ISO 8601, UTC).'),
  clientTimestamp: z.iso
    .datetime()
    .describe('When the speaker began the utterance: the arrival of its end of speech minus its duration (ISO 8601, UTC).'),
});

export const MessagesResponse = z.object({
  items: z
    .array(Message)
    .max(MESSAGES_LIMIT)
    .describe('The call’s utterances in time order (start within the call, then stream); empty for an unknown call.'),
});

export const toMessage = (u: StoredUtterance): z.infer<typeof Message> => ({
  text: u.text,
  sender: { role: u.role, externalId: u.senderExternalId },
  messageId: u.eventId,
  createdTimestamp: isoTime(u.occurredAtMs),
  clientTimestamp: isoTime(Math.max(0, u.speechEndedAtMs - (u.endMs - u.startMs))),
});

export function messagesRoute(deps: MessagesRouteDeps): RouteSpec {
  return {
    method: 'get',
    path: MESSAGES_PATH,
    operationId: 'getConversationMessages',
    summary: 'All utterances of a call',
    description: `Every utterance of the call in time order, at most ${MESSAGES_LIMIT}, in one response (no paging). Utterances appear once the store has written them (within about a second of the webhook). A call this app does not know (or another app’s call) answers 200 with empty items.`,
    tag: 'conversation',
    authenticated: true,
    query: MessagesQuery,
    success: { description: 'The call’s messages', body: { id: 'MessagesResponse', schema: MessagesResponse } },
    errors: [400, 401, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const { externalId } = validate(MessagesQuery, ctx.query, 'query');
      let utterances: StoredUtterance[];
      try {
        utterances = await deps.store.callMessages(tenant.apiId, externalId, MESSAGES_LIMIT);
      } catch (error) {
        if (isEarshotError(error, 'EARSHOT_STORE_FAILED') && error.retriable)
          throw new ApiError(503, 'the transcript store is unavailable; retry shortly', { retryAfterS: 1 });
        throw error;
      }
      await deps.audit.record({
        appId: tenant.apiId,
        action: 'messages.read',
        requestId: ctx.state.requestId,
        callSid: externalId,
        clientAddress: ctx.ip,
      });
      ctx.body = { items: utterances.map(toMessage) } satisfies z.infer<typeof MessagesResponse>;
    },
  };
}
