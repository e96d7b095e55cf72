import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import type { AuditTrail } from '../../../../shared/src/audit/audit-trail.js';
import type { TenantApp } from '../../../../shared/src/tenants/app-directory.js';
import type { CallTracker } from '../../consumer/call-tracker.js';
import type { TokenBuckets } from '../../domain/token-bucket.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { CallSid } from '../schemas.js';
import { validate } from '../validation.js';
import type { LiveFeed, LiveUtterance } from './live-feed.js';
import { LIVE_COOKIE, type LiveSessions, readCookie, sessionCookie } from './live-session.js';

/**
 * The live transcript page (issue 7): `GET /live` serves a static page; the tenant logs in
 * with its api id and secret (`POST /live/session` → HttpOnly SameSite=Strict cookie), lists
 * its calls (`GET /live/calls`) and watches one (`GET /live/calls/{externalId}/events`,
 * server-sent events). Outside the ASAPP routes: no asapp-* headers, the cookie instead.
 * Tenant isolation: a call is listed and streamed only for the app that owns it (the call
 * tracker's owner), and the feed is keyed by tenant too.
 */
export interface LiveRouteDeps {
  readonly sessions: LiveSessions;
  readonly feed: LiveFeed;
  readonly tracker: CallTracker;
  readonly audit: AuditTrail;
  readonly failuresByAddress: TokenBuckets;
  readonly maxStreams: number;
  readonly maxStreamsPerApp: number;
  readonly clock?: () => number;
}

const ASSETS_DIR = new URL('./assets/', import.meta.url);
/** Bytes a browser may leave unread before its stream is cut (it reconnects and catches up from the backlog). */
const MAX_UNREAD_BYTES = 256 * 1024;
const HEARTBEAT_MS = 15_000;
/** Ended calls stay in the list this long, so a call that just finished can still be opened. */
const RECENTLY_ENDED_MS = 15 * 60_000;
const MAX_LISTED_CALLS = 200;

/** The page may load only its own script and style and talk only to this origin. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const LiveLoginRequest = z.object({
  apiId: z.string().min(1).max(256).describe('The app’s api id (earshot apps create).'),
  apiSecret: z.string().min(1).max(256).describe('The app’s secret.'),
});

export const LiveSessionResponse = z.object({
  apiId: z.string(),
  name: z.string().describe('The app’s name.'),
  expiresAt: z.iso.datetime().describe('When the session cookie expires; log in again after.'),
});

export const LiveLogoutResponse = z.object({ loggedOut: z.literal(true) });

export const LiveCall = z.object({
  externalId: z.string().describe('The Twilio Call SID.'),
  live: z.boolean().describe('The media stream is connected or transcription is started.'),
  streamConnected: z.boolean(),
  transcribing: z.boolean().describe('Between start-streaming and stop-streaming.'),
  lastEventTimestamp: z.iso.datetime().describe('The call’s latest lifecycle event or command.'),
  utterances: z.number().int().min(0).describe('Utterances this API node has seen for the call since it started (at most the backlog).'),
});

export const LiveCallsResponse = z.object({
  items: z.array(LiveCall).describe('Live calls first, then calls ended in the last 15 minutes; newest first; at most 200.'),
});

const CallParams = z.object({ externalId: CallSid });

/** The page's script and style sheet (plain files: no build step, no framework). */
const ASSETS = [
  { file: 'live.js', type: 'text/javascript; charset=utf-8', contentType: 'text/javascript', what: 'script' },
  { file: 'live.css', type: 'text/css; charset=utf-8', contentType: 'text/css', what: 'style sheet' },
] as const;

/** The routes, and `closeStreams` for a stopping API (it must not wait for browsers to hang up). */
export function liveRoutes(deps: LiveRouteDeps): { routes: RouteSpec[]; closeStreams(): void } {
  const clock = deps.clock ?? Date.now;
  // Read once at start-up: a handful of small files, served from memory.
  const page = readFileSync(new URL('live.html', ASSETS_DIR));
  const assets = Object.fromEntries(ASSETS.map(({ file }) => [file, readFileSync(new URL(file, ASSETS_DIR))]));
  const streamsByApp = new Map<string, number>();
  const open = new Set<{ destroy(): void }>();
  let streams = 0;

  /** The app of the request's session cookie, or 401 (the page then shows the login form). */
  const sessionApp = (ctx: ApiContext): { app: TenantApp; expiresAtMs: number } => {
    const checked = deps.sessions.check(readCookie(ctx.get('cookie'), LIVE_COOKIE));
    if (!checked.ok) {
      throw new ApiError(
        401,
        checked.reason === 'missing' ? 'not logged in: POST /live/session with your api id and secret' : 'session ended: log in again',
      );
    }
    ctx.state.tenant = checked.app;
    return { app: checked.app, expiresAtMs: checked.expiresAtMs };
  };

  const pageRoute: RouteSpec = {
    method: 'get',
    path: '/live',
    operationId: 'livePage',
    summary: 'The live transcript page (HTML)',
    description: 'A static page: it holds no credential or token; the browser logs in with POST /live/session.',
    tag: 'live transcripts',
    authenticated: false,
    success: { description: 'The page', body: { contentType: 'text/html' } },
    errors: [],
    handle: async (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
      ctx.set('referrer-policy', 'no-referrer');
      ctx.set('x-frame-options', 'DENY');
      ctx.body = page;
    },
  };

  const assetRoutes = ASSETS.map(
    (asset): RouteSpec => ({
      method: 'get',
      path: `/live/assets/${asset.file}`,
      operationId: asset.file === 'live.js' ? 'livePageScript' : 'livePageStyle',
      summary: `The live page's ${asset.what}`,
      tag: 'live transcripts',
      authenticated: false,
      success: { description: `The ${asset.what}`, body: { contentType: asset.contentType } },
      errors: [],
      handle: async (ctx) => {
        ctx.type = asset.type;
        ctx.body = assets[asset.file];
      },
    }),
  );

  const loginRoute: RouteSpec = {
    method: 'post',
    path: '/live/session',
    operationId: 'liveLogin',
    summary: 'Log in to the live page',
    description:
      'Checks the app’s api id and secret (as the asapp-* headers are checked) and answers with a session cookie: HttpOnly, SameSite=Strict, Path=/live, Secure over HTTPS, valid EARSHOT_LIVE_SESSION_TTL_S. Failed attempts count towards the client address’s EARSHOT_API_AUTH_FAILURES_PER_MINUTE. Rotating the secret or disabling the app ends its sessions.',
    tag: 'live transcripts',
    authenticated: false,
    requestBody: { id: 'LiveLoginRequest', schema: LiveLoginRequest },
    success: {
      description: 'Logged in; the Set-Cookie header holds the session',
      body: { id: 'LiveSession', schema: LiveSessionResponse },
    },
    errors: [400, 401, 413, 429, 500],
    handle: async (ctx) => {
      const attempt = deps.failuresByAddress.take(ctx.ip);
      if (!attempt.ok) {
        deps.feed.liveMetrics.logins.inc({ outcome: 'limited' });
        throw new ApiError(429, `too many failed logins from this address; retry in ${attempt.retryAfterS} s`, {
          retryAfterS: attempt.retryAfterS,
        });
      }
      const { apiId, apiSecret } = validate(LiveLoginRequest, ctx.request.body);
      const app = await deps.sessions.authenticate(apiId, apiSecret);
      if (!app) {
        deps.feed.liveMetrics.logins.inc({ outcome: 'refused' });
        throw new ApiError(401, 'invalid credentials: the api id and secret do not match an enabled app');
      }
      deps.failuresByAddress.refund(ctx.ip);
      deps.feed.liveMetrics.logins.inc({ outcome: 'ok' });
      ctx.state.tenant = app;
      const session = deps.sessions.issue(app);
      ctx.set('set-cookie', sessionCookie(session.value, deps.sessions.ttlS, ctx.secure));
      ctx.body = {
        apiId: app.apiId,
        name: app.name,
        expiresAt: new Date(session.expiresAtMs).toISOString(),
      } satisfies z.infer<typeof LiveSessionResponse>;
    },
  };

  const whoRoute: RouteSpec = {
    method: 'get',
    path: '/live/session',
    operationId: 'liveSession',
    summary: 'The app of the current live page session',
    tag: 'live transcripts',
    authenticated: false,
    cookieSession: true,
    success: { description: 'Logged in', body: { id: 'LiveSession', schema: LiveSessionResponse } },
    errors: [401],
    handle: async (ctx) => {
      const { app, expiresAtMs } = sessionApp(ctx);
      ctx.body = { apiId: app.apiId, name: app.name, expiresAt: new Date(expiresAtMs).toISOString() } satisfies z.infer<
        typeof LiveSessionResponse
      >;
    },
  };

  const logoutRoute: RouteSpec = {
    method: 'post',
    path: '/live/session/end',
    operationId: 'liveLogout',
    summary: 'Log out of the live page (clears the session cookie)',
    tag: 'live transcripts',
    authenticated: false,
    success: { description: 'The cookie is cleared', body: { id: 'LiveLogoutResponse', schema: LiveLogoutResponse } },
    errors: [],
    handle: async (ctx) => {
      ctx.set('set-cookie', sessionCookie('', 0, ctx.secure));
      ctx.body = { loggedOut: true } satisfies z.infer<typeof LiveLogoutResponse>;
    },
  };

  const callsRoute: RouteSpec = {
    method: 'get',
    path: '/live/calls',
    operationId: 'liveCalls',
    summary: 'The session app’s live and recently ended calls',
    tag: 'live transcripts',
    authenticated: false,
    cookieSession: true,
    success: { description: 'The calls', body: { id: 'LiveCallsResponse', schema: LiveCallsResponse } },
    errors: [401, 503],
    handle: async (ctx) => {
      const { app } = sessionApp(ctx);
      requireTracker(deps.tracker);
      const now = clock();
      const items = deps.tracker
        .callsOf(app.apiId)
        .map(({ callSid, state }) => ({
          externalId: callSid,
          live: state.streamConnected || state.started,
          streamConnected: state.streamConnected,
          transcribing: state.started,
          lastEventTimestamp: new Date(state.lastEventAtMs).toISOString(),
          utterances: deps.feed.count(app.apiId, callSid),
          at: state.lastEventAtMs,
        }))
        .filter((call) => call.live || now - call.at <= RECENTLY_ENDED_MS)
        .sort((a, b) => Number(b.live) - Number(a.live) || b.at - a.at)
        .slice(0, MAX_LISTED_CALLS)
        .map(({ at: _at, ...call }) => call);
      ctx.body = { items } satisfies z.infer<typeof LiveCallsResponse>;
    },
  };

  const eventsRoute: RouteSpec = {
    method: 'get',
    path: '/live/calls/:externalId/events',
    operationId: 'liveCallEvents',
    summary: 'Watch a call: its utterances as server-sent events',
    description:
      'A text/event-stream: first the utterances this API node kept for the call (after the Last-Event-ID header’s utterance when it is among them), then each new one as the asr consumer emits it. Each event is `event: utterance`, `id: <utteranceId>`, `data: <LiveUtterance JSON>` {utteranceId, externalId, role, senderExternalId, text, startMs, endMs, createdTimestamp, latencyMs, language}; latencyMs is end of speech to utterance event. A comment line every 15 s keeps proxies from closing the stream. A browser that leaves 256 KiB unread is disconnected (EventSource reconnects and catches up). 404 for a call of another app, the same as an unknown one. Opening a stream is audited (live.watched).',
    tag: 'live transcripts',
    authenticated: false,
    cookieSession: true,
    params: CallParams,
    success: { description: 'The event stream', body: { contentType: 'text/event-stream' } },
    errors: [400, 401, 404, 429, 503],
    handle: async (ctx) => {
      const { app } = sessionApp(ctx);
      const { externalId } = validate(CallParams, (ctx as unknown as { params: unknown }).params, 'path');
      requireTracker(deps.tracker);
      const state = deps.tracker.state(externalId);
      if (!state || state.tenantId !== app.apiId) throw new ApiError(404, `call ${externalId} not found`);
      const mine = streamsByApp.get(app.apiId) ?? 0;
      if (streams >= deps.maxStreams || mine >= deps.maxStreamsPerApp) {
        const reason = streams >= deps.maxStreams ? 'node' : 'app';
        deps.feed.liveMetrics.streamsRefused.inc({ reason });
        throw new ApiError(
          429,
          reason === 'node'
            ? 'this API node serves its maximum of live streams; retry shortly'
            : 'this app has its maximum of live streams open',
          { retryAfterS: 5 },
        );
      }
      await deps.audit.record({
        appId: app.apiId,
        action: 'live.watched',
        requestId: ctx.state.requestId,
        callSid: externalId,
        clientAddress: ctx.ip,
      });

      streams++;
      streamsByApp.set(app.apiId, mine + 1);
      deps.feed.liveMetrics.streams.set(streams);
      const out = new PassThrough();
      let streaming = true;
      const close = (): void => {
        if (!streaming) return;
        streaming = false;
        clearInterval(heartbeat);
        subscription.stop();
        streams--;
        const left = (streamsByApp.get(app.apiId) ?? 1) - 1;
        if (left > 0) streamsByApp.set(app.apiId, left);
        else streamsByApp.delete(app.apiId);
        deps.feed.liveMetrics.streams.set(streams);
      };
      // The backlog is written at once, before the browser can read any of it: it does not count against the allowance.
      let allowance = MAX_UNREAD_BYTES;
      /** Queues bytes for the browser; false once it has fallen too far behind (then the stream is cut). */
      const send = (text: string): boolean => {
        if (!streaming) return false;
        if (out.writableLength + ctx.res.writableLength > allowance) {
          deps.feed.liveMetrics.slowDropped.inc();
          close();
          ctx.res.destroy(); // EventSource reconnects with Last-Event-ID and gets the backlog
          return false;
        }
        out.write(text);
        return true;
      };
      // A secret rotated, an app disabled or a session expired ends open streams too, before anything more is sent.
      const cookie = readCookie(ctx.get('cookie'), LIVE_COOKIE);
      const ended = (): boolean => {
        if (deps.sessions.check(cookie).ok) return false;
        close();
        ctx.res.destroy();
        return true;
      };
      const subscription = deps.feed.watch(app.apiId, externalId, (u) => !ended() && send(sseEvent(u)), lastEventId(ctx));
      const heartbeat = setInterval(() => ended() || send(': keep-alive\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
      ctx.req.socket.setTimeout(0);
      ctx.req.socket.setNoDelay(true);
      ctx.res.once('close', close);
      open.add(ctx.res);
      ctx.res.once('close', () => open.delete(ctx.res));

      ctx.status = 200;
      ctx.type = 'text/event-stream';
      ctx.set('x-accel-buffering', 'no'); // nginx: do not buffer the stream
      ctx.body = out;
      send('retry: 2000\n\n');
      for (const utterance of subscription.backlog) {
        const event = sseEvent(utterance);
        allowance += Buffer.byteLength(event);
        send(event);
      }
    },
  };

  return {
    routes: [pageRoute, ...assetRoutes, loginRoute, whoRoute, logoutRoute, callsRoute, eventsRoute],
    closeStreams: () => {
      for (const res of open) res.destroy();
      open.clear();
    },
  };
}

function requireTracker(tracker: CallTracker): void {
  if (!tracker.ready) throw new ApiError(503, 'call state is still being loaded from the event log; retry shortly', { retryAfterS: 1 });
}

function lastEventId(ctx: ApiContext): string | undefined {
  const id = ctx.get('last-event-id');
  return id && id.length <= 256 ? id : undefined;
}

/** One server-sent event; JSON has no raw newlines, so `data:` is one line. */
function sseEvent(u: LiveUtterance): string {
  return `event: utterance\nid: ${u.utteranceId}\ndata: ${JSON.stringify(u)}\n\n`;
}
