import { z } from 'zod';
import type { AuditTrail } from '../../../../shared/src/audit/audit-trail.js';
import type { StreamTokens } from '../../../../shared/src/tenants/stream-tokens.js';
import { tenantOf } from '../context.js';
import type { RouteSpec } from '../route.js';

/**
 * GET /mg-autotranscribe/v1/twilio-media-stream-url (SPEC §3.1): a URL with a signed,
 * tenant-bound token in its path (Twilio refuses query strings in `<Stream url>`). The
 * audit record is written before the URL is returned: no URL is issued unaudited.
 */
export const StreamUrlResponse = z.object({
  streamingUrl: z
    .string()
    .regex(/^wss?:\/\/[^/?#\s]+\/twilio-media\/[A-Za-z0-9._-]+$/)
    .describe('Give this to Twilio as <Stream url>.'),
});

export function streamUrlRoute(deps: { tokens: StreamTokens; audit: AuditTrail; ingestUrl: string }): RouteSpec {
  return {
    method: 'get',
    path: '/mg-autotranscribe/v1/twilio-media-stream-url',
    operationId: 'getTwilioMediaStreamUrl',
    summary: 'Get a media stream URL for Twilio <Stream>',
    description:
      'The token in the path names the calling app and expires after EARSHOT_STREAM_TOKEN_TTL_S (default 300 s); it is checked only when a WebSocket opens, and one URL may open any number of streams within its lifetime.',
    tag: 'call control',
    authenticated: true,
    success: { description: 'A streaming URL', body: { id: 'StreamUrlResponse', schema: StreamUrlResponse } },
    errors: [401, 429, 500, 503],
    handle: async (ctx) => {
      const tenant = tenantOf(ctx);
      const { token } = await deps.tokens.issue(tenant.apiId);
      await deps.audit.record({
        appId: tenant.apiId,
        action: 'stream_url.issued',
        requestId: ctx.state.requestId,
        callSid: null,
        clientAddress: ctx.ip,
      });
      ctx.body = { streamingUrl: `${deps.ingestUrl}/twilio-media/${token}` } satisfies z.infer<typeof StreamUrlResponse>;
    },
  };
}
