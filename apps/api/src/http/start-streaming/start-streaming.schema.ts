import { z } from 'zod';
import { CallSid, Namespace } from '../schemas.js';

/**
 * Body of POST /mg-autotranscribe/v1/start-streaming (SPEC §3.2). Unknown fields are ignored
 * rather than rejected: clients written against ASAPP's API may send fields Earshot does not
 * use, and wire compatibility matters more than catching their typos.
 */
const Role = z.enum(['customer', 'agent']);
const externalId = (what: string) =>
  z.string().min(1).max(256).describe(`Your identifier for the ${what}; sent back as sender.externalId.`);

export const StartStreamingRequest = z.object({
  namespace: Namespace,
  guid: CallSid,
  customerId: externalId('customer'),
  agentId: externalId('agent'),
  autotranscribeParams: z
    .object({
      language: z.string().min(1).max(35).default('en-US').describe('BCP 47 tag; a loaded model must serve it (en-US today), else 422.'),
      detailedToken: z.boolean().default(false).describe('Word tokens with times; only with redactionOutput "unredacted", else 422.'),
      audioRecordingAllowed: z.boolean().default(false).describe('Keep the session audio as a WAV for the tenant.'),
      redactionOutput: z.enum(['redacted', 'unredacted', 'redacted_and_unredacted']).default('redacted'),
    })
    .prefault({}),
  twilioParams: z
    .object({
      trackMap: z
        .object({
          inbound: Role.optional().describe('Role of the inbound track (the caller); default customer, or the other role of outbound.'),
          outbound: Role.optional().describe('Role of the outbound track; default agent, or the other role of inbound.'),
        })
        .optional(),
    })
    .optional(),
});

export type StartStreamingRequest = z.infer<typeof StartStreamingRequest>;
