import { z } from 'zod';
import type { AuditTrail } from '../../../../shared/src/audit/audit-trail.js';
import type { RecordingInfo, RecordingStore } from '../../../../shared/src/ports/recording-store.port.js';
import { CALL_SID_PATTERN } from '../../domain/transcription-rules.js';
import { tenantOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { validate } from '../validation.js';

/**
 * Recordings of SPEC §6 (`audioRecordingAllowed`): the asr consumer writes one WAV per
 * transcription session when the session closes; here the tenant lists a call's recordings
 * and downloads one. Tenant-scoped by the store: another app's recording is a 404, the same
 * answer as one that does not exist. A download is audited (`recording.downloaded`) before a
 * byte of audio is sent; no audit record, no audio (503).
 */
export interface RecordingRouteDeps {
  readonly recordings: RecordingStore;
  readonly audit: AuditTrail;
}

export const RECORDINGS_PATH = '/mg-autotranscribe/v1/recordings';
const STREAM_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const RECORDING_ID = new RegExp(`^${CALL_SID_PATTERN.source.slice(1, -1)}_${STREAM_ID}$`);

const requiredOr =
  (message: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : message;

export const ListRecordingsQuery = z.object({
  externalId: z
    .string({ error: requiredOr('must be one Twilio Call SID') })
    .regex(CALL_SID_PATTERN, { error: "must be a Twilio Call SID: 'CA' followed by 32 lowercase hex digits" })
    .describe('The Twilio Call SID of the call.'),
});

export const RecordingParams = z.object({
  recordingId: z
    .string()
    .regex(RECORDING_ID, { error: 'must be a recordingId as listed: <Call SID>_<customer streamId>' })
    .describe('A recordingId from the listing: `<Call SID>_<customer streamId>`.'),
});

export const Recording = z.object({
  recordingId: z.string().describe('Names the call and the session; use it to download the audio.'),
  externalId: z.string().describe('The Twilio Call SID.'),
  customerStreamId: z.string().describe('The customer streamId of the session (from start-streaming).'),
  agentStreamId: z.string().describe('The agent streamId of the session.'),
  contentType: z.literal('audio/wav'),
  sampleRate: z.literal(8000),
  channels: z.tuple([z.literal('customer'), z.literal('agent')]).describe('Channel order: customer left, agent right.'),
  bytes: z.number().int().min(0).describe('Size of the WAV file.'),
  durationMs: z.number().int().min(0),
  startMs: z
    .number()
    .int()
    .min(0)
    .describe('Media-stream time of the first sample: the clock of the utterances’ start and end, so transcripts line up with the audio.'),
  complete: z
    .boolean()
    .describe(
      'false when transcription of the session moved to another asr node mid-way (crash, rebalance): earlier audio may be missing.',
    ),
  truncated: z.boolean().describe('true when audio past the maximum recording duration (EARSHOT_RECORDINGS_MAX_DURATION_S) was dropped.'),
  createdTimestamp: z.iso.datetime().describe('When the session closed and the recording was written (ISO 8601).'),
  audioPath: z.string().describe('Path of the audio download, relative to this API.'),
});

export const ListRecordingsResponse = z.object({ items: z.array(Recording).describe('One per transcription session, oldest first.') });

const toRecording = (info: RecordingInfo): z.infer<typeof Recording> => ({
  recordingId: info.recordingId,
  externalId: info.callSid,
  customerStreamId: info.customerStreamId,
  agentStreamId: info.agentStreamId,
  contentType: 'audio/wav',
  sampleRate: 8000,
  channels: ['customer', 'agent'],
  bytes: info.bytes,
  durationMs: info.durationMs,
  startMs: info.mediaStartMs,
  complete: info.complete,
  truncated: info.truncated,
  createdTimestamp: new Date(info.createdAtMs).toISOString(),
  audioPath: `${RECORDINGS_PATH}/${info.recordingId}/audio`,
});

export function listRecordingsRoute(deps: RecordingRouteDeps): RouteSpec {
  return {
    method: 'get',
    path: RECORDINGS_PATH,
    operationId: 'listRecordings',
    summary: 'List the recordings of a call',
    description:
      'One recording per transcription session (start-streaming to stop-streaming or the end of the call) that had autotranscribeParams.audioRecordingAllowed true; it is listed once the session has closed. 404 when this app has no recording of the call (not recorded, not closed yet, or not this app’s call).',
    tag: 'recordings',
    authenticated: true,
    query: ListRecordingsQuery,
    success: { description: 'The call’s recordings', body: { id: 'ListRecordingsResponse', schema: ListRecordingsResponse } },
    errors: [400, 401, 404, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const { externalId } = validate(ListRecordingsQuery, ctx.query, 'query');
      const infos = await deps.recordings.list(tenant.apiId, externalId);
      if (infos.length === 0) throw new ApiError(404, `no recording of call ${externalId} for this app`);
      ctx.body = { items: infos.map(toRecording) } satisfies z.infer<typeof ListRecordingsResponse>;
    },
  };
}

export function recordingAudioRoute(deps: RecordingRouteDeps): RouteSpec {
  return {
    method: 'get',
    path: `${RECORDINGS_PATH}/:recordingId/audio`,
    operationId: 'getRecordingAudio',
    summary: 'Download a recording (WAV)',
    description:
      'A 16-bit PCM WAV at 8 kHz with two channels: customer left, agent right, both on the media-stream clock (silence where a side sent nothing). The download is audited.',
    tag: 'recordings',
    authenticated: true,
    params: RecordingParams,
    success: { description: 'The WAV file', body: { contentType: 'audio/wav' } },
    errors: [400, 401, 404, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const { recordingId } = validate(RecordingParams, (ctx as unknown as { params: unknown }).params, 'path');
      const found = await deps.recordings.get(tenant.apiId, recordingId);
      if (!found) throw new ApiError(404, `recording ${recordingId} not found`);
      try {
        await deps.audit.record({
          appId: tenant.apiId,
          action: 'recording.downloaded',
          requestId: ctx.state.requestId,
          callSid: found.info.callSid,
          clientAddress: ctx.ip,
        });
      } catch (error) {
        found.audio.destroy();
        throw error;
      }
      ctx.type = 'audio/wav';
      ctx.set('content-disposition', `attachment; filename="${recordingId}.wav"`);
      ctx.body = found.audio;
      ctx.length = found.info.bytes;
    },
  };
}
