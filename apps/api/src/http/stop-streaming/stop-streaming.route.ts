import { z } from 'zod';
import { decideStop } from '../../domain/call-state.js';
import { auditCommand, type CallCommandDeps, callNotFound, publishCommand, requireCallState } from '../call-commands.js';
import { tenantOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { CallSid, Namespace, streamingBody, streamingResponse } from '../schemas.js';
import { validate } from '../validation.js';

/**
 * POST /mg-autotranscribe/v1/stop-streaming (SPEC §3.3): publishes
 * `TranscriptionStopRequested`; the asr consumer finishes the utterance in progress. The
 * response names the stream ids of the session that ends. Known gap: the per-role `summary`
 * needs the asr consumer's session totals (a later issue); see apps/api/README.md.
 */
export const StopStreamingRequest = z.object({ namespace: Namespace, guid: CallSid });

export function stopStreamingRoute(deps: CallCommandDeps): RouteSpec {
  return {
    method: 'post',
    path: '/mg-autotranscribe/v1/stop-streaming',
    operationId: 'stopStreaming',
    summary: 'Stop (pause) transcription of a call',
    description:
      'The utterance in progress is finished and delivered. 409 when the call is not started, 404 when it is unknown to this app.',
    tag: 'call control',
    authenticated: true,
    requestBody: { id: 'StopStreamingRequest', schema: StopStreamingRequest },
    success: { description: 'Transcription stopped', body: { id: 'StopStreamingResponse', schema: streamingResponse() } },
    errors: [400, 401, 404, 409, 413, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const body = validate(StopStreamingRequest, ctx.request.body);
      requireCallState(deps);
      const callSid = body.guid;
      const stopped = await deps.tracker.exclusive(callSid, async () => {
        const decision = decideStop(deps.tracker.state(callSid), tenant.apiId);
        if (decision.kind === 'rejected') {
          if (decision.reason === 'not_found') throw callNotFound(callSid);
          throw new ApiError(409, `call ${callSid} is not started; nothing to stop`);
        }
        await publishCommand(
          deps,
          { callSid, tenantId: tenant.apiId },
          { type: 'TranscriptionStopRequested', data: { requestId: ctx.state.requestId } },
        );
        return decision;
      });
      await auditCommand(deps, ctx, 'transcription.stop', callSid);
      ctx.body = streamingBody(stopped.customerStreamId, stopped.agentStreamId);
    },
  };
}
