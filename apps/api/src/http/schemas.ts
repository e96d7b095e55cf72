import { z } from 'zod';
import { CALL_SID_PATTERN } from '../domain/transcription-rules.js';
import { ERROR_CODES } from './errors.js';

/**
 * Schemas shared by several routes. Each use case's own request and response schemas sit in
 * its folder; `openapi/openapi.ts` turns all of them into the OpenAPI document, so what is
 * validated and what is documented cannot differ.
 */
const requiredOr =
  (message: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : message;

export const Namespace = z
  .literal('twilio', { error: requiredOr('must be "twilio" (the only media gateway supported)') })
  .describe('The media gateway; only "twilio".');

export const CallSid = z
  .string({ error: requiredOr('must be a string: the Twilio Call SID') })
  .regex(CALL_SID_PATTERN, { error: "must be a Twilio Call SID: 'CA' followed by 32 lowercase hex digits" })
  .describe('The Twilio Call SID of the call.');

export const StreamStatus = z.object({
  code: z.literal(1000),
  description: z.literal('OK'),
});

export const RoleStream = z.object({
  streamId: z.uuid().describe('Identifies this role’s transcription session; new on every start.'),
  status: StreamStatus,
});

export const SessionSummary = z.object({
  totalAudioBytes: z.number().int().min(0).describe('Audio bytes (8 kHz mu-law) transcribed for this role in the session.'),
  audioDurationMs: z.number().int().min(0),
  streamingSeconds: z.number().min(0).describe('Wall time from start-streaming to stop-streaming.'),
  transcripts: z.number().int().min(0).describe('Utterances delivered for this role in the session.'),
});

/** start answers with each role's stream; stop adds the summary of the session that ended. */
export const streamingResponse = () =>
  z.object({
    isOk: z.literal(true),
    autotranscribeResponse: z.object({ customer: RoleStream, agent: RoleStream }),
  });

export const stopResponse = () =>
  z.object({
    isOk: z.literal(true),
    autotranscribeResponse: z.object({
      customer: RoleStream.extend({ summary: SessionSummary }),
      agent: RoleStream.extend({ summary: SessionSummary }),
    }),
  });

export const ErrorResponse = z.object({
  error: z.object({
    requestId: z.string().describe('Also in the x-request-id response header; quote it when reporting a problem.'),
    code: z.enum(ERROR_CODES).describe('The HTTP status followed by "-01".'),
    message: z.string().describe('What was wrong, naming the field or header.'),
  }),
});

export type StreamingResponse = z.infer<ReturnType<typeof streamingResponse>>;

export function streamingBody(customerStreamId: string, agentStreamId: string): StreamingResponse {
  const ok = { code: 1000, description: 'OK' } as const;
  return {
    isOk: true,
    autotranscribeResponse: {
      customer: { streamId: customerStreamId, status: ok },
      agent: { streamId: agentStreamId, status: ok },
    },
  };
}
