import { createLocalFeedStorage, exportDir } from '../shared/src/adapters/local-feed-storage.js';
import { createLocalRecordingStore, recordingsDir } from '../shared/src/adapters/local-recording-store.js';
import { AUDIT_HASH_KEY_LABEL, AuditTrail } from '../shared/src/audit/audit-trail.js';
import type { FeedStorage } from '../shared/src/ports/feed-storage.port.js';
import type { RecordingStore } from '../shared/src/ports/recording-store.port.js';
import type { TranscriptStore } from '../shared/src/ports/transcript-store.port.js';
import type { Runtime } from '../shared/src/runtime.js';
import { createTranscriptStore } from '../shared/src/transcript-store/transcript-store.js';
import { apiMetrics } from './src/api-metrics.js';
import { CallTracker } from './src/consumer/call-tracker.js';
import { SessionWaiter } from './src/consumer/session-waiter.js';
import { TokenBuckets } from './src/domain/token-bucket.js';
import type { CallCommandDeps } from './src/http/call-commands.js';
import { DownloadLinks } from './src/http/fileexporter/download-links.js';
import { fileExporterRoutes } from './src/http/fileexporter/fileexporter.routes.js';
import { listen, tlsOptions } from './src/http/listen.js';
import { liveRoutes } from './src/http/live/live.routes.js';
import { LiveFeed } from './src/http/live/live-feed.js';
import { LiveSessions } from './src/http/live/live-session.js';
import { messagesRoute } from './src/http/messages/messages.route.js';
import { openApiRoute } from './src/http/openapi/openapi.js';
import { healthzRoute, readyzRoute } from './src/http/operations/health.routes.js';
import { metricsRoute } from './src/http/operations/metrics.route.js';
import { listRecordingsRoute, recordingAudioRoute } from './src/http/recordings/recordings.routes.js';
import { createKoaApp } from './src/http/server.js';
import { startStreamingRoute } from './src/http/start-streaming/start-streaming.route.js';
import { stopStreamingRoute } from './src/http/stop-streaming/stop-streaming.route.js';
import { ingestPublicUrl, isWildcardHost } from './src/http/stream-url/ingest-url.js';
import { streamUrlRoute } from './src/http/stream-url/stream-url.route.js';

/**
 * The API app (SPEC §3): call control over HTTPS for tenants, operations endpoints for
 * operators. The only composition root of the app: everything it uses comes from the
 * runtime, and nothing else in `apps/api` builds a dependency.
 */
export interface ApiServer {
  /** Where it listens, with the real port (EARSHOT_API_PORT=0 picks a free one). */
  readonly url: string;
  /** Stops taking requests, lets in-flight ones finish (up to 2 s), leaves the event log open. */
  stop(): Promise<void>;
}

export async function startApi(
  runtime: Runtime,
  options: { clock?: () => number; recordings?: RecordingStore; store?: TranscriptStore; feeds?: FeedStorage } = {},
): Promise<ApiServer> {
  const { config } = runtime;
  const clock = options.clock ?? Date.now;
  const logger = runtime.logger.child({ component: 'api' });
  const tls = tlsOptions(config); // refuses plain HTTP off loopback before anything starts
  const metrics = apiMetrics(runtime.metrics);
  const tracker = new CallTracker({ log: runtime.eventLog, logger, metrics, clock });
  const audit = new AuditTrail(runtime.eventLog, runtime.credentials.derive(AUDIT_HASH_KEY_LABEL), clock);
  const sessions = new SessionWaiter({ log: runtime.eventLog, logger, clock });
  const commands: CallCommandDeps = {
    log: runtime.eventLog,
    tracker,
    audit,
    metrics,
    logger,
    clock,
    sessions,
    stopTimeoutMs: config.EARSHOT_STOP_TIMEOUT_MS,
  };

  // Recordings (SPEC §6): EARSHOT_RECORDINGS_DIR, which the asr nodes write, unless the caller brings another store.
  const recordings = options.recordings ?? createLocalRecordingStore(recordingsDir(config));
  // Feed files (SPEC §3.5): EARSHOT_EXPORT_DIR, which the export app writes; links signed with a key derived from the secrets key.
  const feeds = options.feeds ?? createLocalFeedStorage(exportDir(config));
  const links = new DownloadLinks(runtime.credentials.derive('earshot feed download links'), config.EARSHOT_EXPORT_URL_TTL_S * 1000, clock);

  // Transcripts (SPEC §3.4): the store the store app writes; `earshot start` passes its own in embedded mode.
  const store = options.store ?? createTranscriptStore(config, logger);

  const ingestUrl = ingestPublicUrl(config);
  if (!config.EARSHOT_INGEST_PUBLIC_URL && isWildcardHost(config.EARSHOT_INGEST_HOST)) {
    logger.warn({ ingestUrl }, 'api.ingest_url_unreachable: set EARSHOT_INGEST_PUBLIC_URL to the address Twilio should connect to');
  }
  const failuresByAddress = new TokenBuckets(config.EARSHOT_API_AUTH_FAILURES_PER_MINUTE, clock);
  // The live transcript page (cookie sessions, SSE); its failed logins share the address limit of the API.
  const liveFeed =
    config.EARSHOT_LIVE_PAGE === 'on' ? new LiveFeed({ log: runtime.eventLog, logger, metrics: runtime.metrics, clock }) : null;
  const live = liveFeed
    ? liveRoutes({
        sessions: new LiveSessions(
          runtime.credentials.derive('earshot live sessions'),
          runtime.apps,
          config.EARSHOT_LIVE_SESSION_TTL_S,
          clock,
        ),
        feed: liveFeed,
        tracker,
        audit,
        failuresByAddress,
        maxStreams: config.EARSHOT_LIVE_MAX_STREAMS,
        maxStreamsPerApp: config.EARSHOT_LIVE_MAX_STREAMS_PER_APP,
        clock,
      })
    : null;
  const routes = [
    streamUrlRoute({ tokens: runtime.tokens, audit, ingestUrl }),
    startStreamingRoute(commands),
    stopStreamingRoute(commands),
    listRecordingsRoute({ recordings, audit }),
    recordingAudioRoute({ recordings, audit }),
    messagesRoute({ store, audit }),
    ...fileExporterRoutes({ feeds, links, audit, apps: runtime.apps, linkBase: config.EARSHOT_EXPORT_URL_BASE }),
    healthzRoute(),
    readyzRoute({ log: runtime.eventLog, tracker }),
    metricsRoute(runtime.metrics),
    ...(live?.routes ?? []),
  ];
  const requestsByTenant = new TokenBuckets(config.EARSHOT_API_RATE_LIMIT_PER_MINUTE, clock);
  const app = createKoaApp({
    routes: [...routes, openApiRoute(routes)],
    logger,
    metrics,
    auth: {
      apps: runtime.apps,
      metrics,
      failuresByAddress,
      requestsByTenant,
      tenantLimitPerMinute: config.EARSHOT_API_RATE_LIMIT_PER_MINUTE,
    },
  });
  const sweeper = setInterval(() => {
    failuresByAddress.sweep();
    requestsByTenant.sweep();
  }, 60_000);
  sweeper.unref();

  // Listen first so /healthz answers (and /readyz says 503) while the call state loads.
  const listening = await listen(app.callback(), {
    host: config.EARSHOT_API_HOST,
    port: config.EARSHOT_API_PORT,
    tls,
    logger,
    metrics: runtime.metrics,
  });
  const stop = async (): Promise<void> => {
    clearInterval(sweeper);
    const closing = listening.close(); // no new connections from here on
    live?.closeStreams(); // browsers never hang up by themselves
    await closing;
    await liveFeed?.stop();
    await tracker.stop();
    await sessions.stop();
    if (!options.store) await store.close();
  };
  try {
    if (!options.store) await store.migrate(); // idempotent; a node may answer before any store app ran
    await sessions.start();
    await liveFeed?.start();
    await tracker.start();
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info({ url: listening.url, tls: tls !== null }, 'api.listening');
  return { url: listening.url, stop };
}
