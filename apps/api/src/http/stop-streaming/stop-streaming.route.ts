import { z } from 'zod';
import { decideStop } from '../../domain/call-state.js';
import { auditCommand, type CallCommandDeps, callNotFound, publishCommand, requireCallState } from '../call-commands.js';
import { tenantOf } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { CallSid, Namespace, stopResponse, streamingBody } from '../schemas.js';
import { validate } from '../validation.js';

/**
 * POST /mg-autotranscribe/v1/stop-streaming (SPEC §3.3): publishes
 * `TranscriptionStopRequested`, waits (bounded, EARSHOT_STOP_TIMEOUT_MS) until the asr
 * consumer has finished the utterance in progress and closed the session, and answers with
 * each role's summary. No answer in time: 503 — the stop stands and completes anyway.
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
    success: { description: 'Transcription stopped', body: { id: 'StopStreamingResponse', schema: stopResponse() } },
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
      const closed = await deps.sessions.wait(ctx.state.requestId, deps.stopTimeoutMs);
      if (!closed) {
        throw new ApiError(
          503,
          `transcription did not confirm the stop within ${deps.stopTimeoutMs} ms; the stop is recorded and will complete`,
          {
            retryAfterS: 1,
          },
        );
      }
      const summary = (role: 'customer' | 'agent') => {
        const s = closed.summaries.find((x) => x.role === role);
        return {
          totalAudioBytes: s?.totalAudioBytes ?? 0,
          audioDurationMs: s?.audioDurationMs ?? 0,
          streamingSeconds: s?.streamingSeconds ?? 0,
          transcripts: s?.transcripts ?? 0,
        };
      };
      const streams = streamingBody(stopped.customerStreamId, stopped.agentStreamId);
      ctx.body = {
        ...streams,
        autotranscribeResponse: {
          customer: { ...streams.autotranscribeResponse.customer, summary: summary('customer') },
          agent: { ...streams.autotranscribeResponse.agent, summary: summary('agent') },
        },
      };
    },
  };
}
