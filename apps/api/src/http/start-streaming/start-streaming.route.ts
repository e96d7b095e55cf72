import { randomUUID } from 'node:crypto';
import { decideStart } from '../../domain/call-state.js';
import { checkStartRules } from '../../domain/transcription-rules.js';
import { auditCommand, type CallCommandDeps, callNotFound, publishCommand, requireCallState } from '../call-commands.js';
import { tenantOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { streamingBody, streamingResponse } from '../schemas.js';
import { validate } from '../validation.js';
import { StartStreamingRequest } from './start-streaming.schema.js';

/**
 * POST /mg-autotranscribe/v1/start-streaming (SPEC §3.2). Checks, in order: the body's shape
 * (400), the rules of §3.2/§6 (422), then the call's state on this node (404 another
 * tenant's call, 409 already started), and publishes `TranscriptionStartRequested` with new
 * per-role stream ids. A call unknown so far is accepted: start may precede the stream.
 */
export function startStreamingRoute(deps: CallCommandDeps): RouteSpec {
  return {
    method: 'post',
    path: '/mg-autotranscribe/v1/start-streaming',
    operationId: 'startStreaming',
    summary: 'Start (or resume) transcription of a call',
    description:
      'Audio received after this request is transcribed, per role, until stop-streaming. It may come before or after the media stream connects; start after stop resumes with new streamIds.',
    tag: 'call control',
    authenticated: true,
    requestBody: { id: 'StartStreamingRequest', schema: StartStreamingRequest },
    success: { description: 'Transcription started', body: { id: 'StartStreamingResponse', schema: streamingResponse() } },
    errors: [400, 401, 404, 409, 413, 422, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const body = validate(StartStreamingRequest, ctx.request.body);
      const params = body.autotranscribeParams;
      const rules = checkStartRules({
        language: params.language,
        detailedToken: params.detailedToken,
        redactionOutput: params.redactionOutput,
        inbound: body.twilioParams?.trackMap?.inbound,
        outbound: body.twilioParams?.trackMap?.outbound,
      });
      if (!rules.ok) throw new ApiError(422, rules.message);
      requireCallState(deps);
      const callSid = body.guid;
      const started = await deps.tracker.exclusive(callSid, async () => {
        const decision = decideStart(deps.tracker.state(callSid), tenant.apiId);
        if (decision.kind === 'rejected') {
          if (decision.reason === 'not_found') throw callNotFound(callSid);
          throw new ApiError(409, `call ${callSid} is already started; stop-streaming it before starting again`);
        }
        const data = {
          requestId: ctx.state.requestId,
          customerId: body.customerId,
          agentId: body.agentId,
          language: params.language,
          detailedToken: params.detailedToken,
          audioRecordingAllowed: params.audioRecordingAllowed,
          redactionOutput: params.redactionOutput,
          inboundRole: rules.roles.inboundRole,
          outboundRole: rules.roles.outboundRole,
          customerStreamId: randomUUID(),
          agentStreamId: randomUUID(),
        };
        await publishCommand(deps, { callSid, tenantId: tenant.apiId }, { type: 'TranscriptionStartRequested', data });
        return data;
      });
      await auditCommand(deps, ctx, 'transcription.start', callSid);
      ctx.body = streamingBody(started.customerStreamId, started.agentStreamId);
    },
  };
}
