import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { access, constants } from 'node:fs/promises';
import { hostname } from 'node:os';
import { EarshotError } from '../shared/src/errors.js';
import type { CallEvent } from '../shared/src/events.js';
import type { Runtime } from '../shared/src/runtime.js';
import { readCertificate } from '../shared/src/tls-certificate.js';
import { TOPICS, type TopicSpec } from '../shared/src/topics.js';
import { CallPublisher } from './src/call-publisher.js';
import { FRAME_MS } from './src/domain/track-batcher.js';
import { OPENAPI, sendError, sendJson } from './src/http.js';
import { IngestMetrics } from './src/metrics.js';
import { nativeUws, type Uws } from './src/native-uws.js';
import { type IngestContext, Session } from './src/session.js';
import { reloadableCertificate } from './src/tls-reload.js';
import { authorizeUpgrade, type UpgradeDecision, type UpgradeRequest } from './src/upgrade-auth.js';

/**
 * Media ingest (SPEC §4): Twilio Media Streams over WebSocket (uWebSockets.js) into
 * `earshot.call-events.v1`. The only composition root of the app; apps/ingest/README.md
 * explains the decisions.
 */
export interface IngestServer {
  /** Where it listens, e.g. `ws://127.0.0.1:8081` (`wss://` with TLS). */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends every stream (StreamEnded "ingest shutting down"), waits for the log. */
  stop(): Promise<void>;
}

export interface IngestOptions {
  /** How long `stop` waits for the event log to acknowledge what is buffered (default 10 s). */
  readonly drainTimeoutMs?: number;
  /** Where call events go (default `earshot.call-events.v1`); tests use a fresh topic. */
  readonly topic?: TopicSpec<CallEvent>;
}

/** Largest WebSocket message accepted; Twilio's largest (`start` with parameters) is a few KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
const SWEEP_INTERVAL_MS = 500;
const PENDING_UPGRADES_WAIT_MS = 5000;

interface SocketData {
  readonly session: Session;
}

export async function startIngest(runtime: Runtime, options: IngestOptions = {}): Promise<IngestServer> {
  const uWS = nativeUws();
  const config = runtime.config;
  const logger = runtime.logger.child({ component: 'ingest' });
  const tls = Boolean(config.EARSHOT_TLS_CERT_FILE && config.EARSHOT_TLS_KEY_FILE);
  if (tls) await checkReadable([config.EARSHOT_TLS_CERT_FILE as string, config.EARSHOT_TLS_KEY_FILE as string]);
  const certificateFiles = tls
    ? { certFile: config.EARSHOT_TLS_CERT_FILE as string, keyFile: config.EARSHOT_TLS_KEY_FILE as string }
    : null;
  const certificate = certificateFiles ? readCertificate(certificateFiles) : null;

  const sessions = new Set<Session>();
  let publisher: CallPublisher | null = null;
  const metrics = new IngestMetrics(runtime.metrics, {
    sessionsOpen: () => sessions.size,
    callsBuffering: () => publisher?.callsBuffering() ?? 0,
    bufferedAudioMs: () => publisher?.bufferedAudioMs() ?? 0,
  });
  publisher = new CallPublisher(
    runtime.eventLog,
    options.topic ?? TOPICS.callEvents,
    metrics,
    logger,
    config.EARSHOT_INGEST_MAX_BUFFERED_MS,
  );
  const ctx: IngestContext = {
    framesPerBatch: config.EARSHOT_INGEST_CHUNK_MS / FRAME_MS,
    idleTimeoutMs: config.EARSHOT_INGEST_IDLE_TIMEOUT_S * 1000,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    ingestNode: config.EARSHOT_NODE_ID ?? hostname(),
    metrics,
    logger,
    publisher,
  };

  let stopping = false;
  let pendingUpgrades = 0;
  const authorize = (request: UpgradeRequest): Promise<UpgradeDecision> =>
    authorizeUpgrade(runtime, config, tls, request).catch((error: unknown) => {
      logger.error({ err: error }, 'ingest.upgrade_failed');
      return { ok: false, status: 500, reason: 'internal_error', message: 'internal error' } as const;
    });
  const rejected = (decision: Extract<UpgradeDecision, { ok: false }>, remoteAddress: string): void => {
    metrics.upgradesRejected.inc({ reason: decision.reason });
    logger.warn({ reason: decision.reason, status: decision.status, remoteAddress }, 'ingest.upgrade_rejected');
  };

  const app = createApp(uWS, tls ? { cert: config.EARSHOT_TLS_CERT_FILE as string, key: config.EARSHOT_TLS_KEY_FILE as string } : null);

  // Routes are registered once on the app and again under each TLS server name (uWS keeps
  // one router per SNI name; see src/tls-reload.ts).
  const registerRoutes = (target: TemplatedApp): void => {
    target.ws<SocketData>('/twilio-media/*', {
      compression: uWS.DISABLED,
      maxPayloadLength: MAX_MESSAGE_BYTES,
      // Transport liveness: uWS pings and closes peers that stop answering. Application
      // idleness (no Twilio message) is the sweep's job, since pongs keep a socket "active".
      idleTimeout: config.EARSHOT_INGEST_IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      maxBackpressure: 64 * 1024,
      upgrade: (res, req, context) => {
        // uWS's req lives only during this call: read everything now. Token verification is
        // async (jose), so the response is kept alive with onAborted and written corked.
        const request: UpgradeRequest = {
          path: req.getUrl(),
          query: req.getQuery() ?? '',
          host: req.getHeader('host'),
          signature: req.getHeader('x-twilio-signature'),
        };
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        pendingUpgrades++;
        void authorize(request).then((decision) => {
          pendingUpgrades--;
          if (aborted) {
            metrics.upgradesRejected.inc({ reason: 'aborted' });
            return;
          }
          const final: UpgradeDecision = stopping
            ? { ok: false, status: 503, reason: 'shutting_down', message: 'ingest is shutting down' }
            : decision;
          res.cork(() => {
            if (!final.ok) {
              rejected(final, remoteAddress);
              sendError(res, final.status, final.message);
              return;
            }
            const session = new Session(ctx, final.apiId, remoteAddress);
            res.upgrade<SocketData>({ session }, key, protocol, extensions, context);
          });
        });
      },
      open: (ws) => {
        const session = ws.getUserData().session;
        session.ws = ws;
        sessions.add(session);
        metrics.upgradesAccepted.inc();
      },
      message: (ws, message, isBinary) => {
        const session = ws.getUserData().session;
        try {
          session.onMessage(message, isBinary);
        } catch (error) {
          // An exception here would be uncaught and end the process, with every other call.
          session.failed(error);
        }
      },
      close: (ws, code, message) => {
        const session = ws.getUserData().session;
        sessions.delete(session);
        session.onClose(code, message);
      },
    });
    target.get('/twilio-media/*', (res) => sendError(res, 426, 'this path only accepts WebSocket upgrades'));
    target.get('/twilio-media', (res, req) => {
      if (req.getHeader('upgrade')) {
        rejected({ ok: false, status: 401, reason: 'token_missing', message: '' }, Buffer.from(res.getRemoteAddressAsText()).toString());
        sendError(res, 401, 'the stream URL has no token: /twilio-media/<token>');
      } else sendError(res, 426, 'this path only accepts WebSocket upgrades');
    });
    target.get('/healthz', (res) => sendJson(res, 200, { status: 'ok' }));
    target.get('/readyz', (res) => sendJson(res, stopping ? 503 : 200, { status: stopping ? 'stopping' : 'ready' }));
    target.get('/openapi.json', (res) => sendJson(res, 200, OPENAPI));
    target.get('/metrics', (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      void runtime.metrics.metrics().then(
        (text) => {
          if (!aborted) res.cork(() => res.writeHeader('content-type', runtime.metrics.contentType).end(text));
        },
        (error: unknown) => {
          logger.error({ err: error }, 'ingest.metrics_failed');
          if (!aborted) res.cork(() => sendError(res, 500, 'metrics unavailable'));
        },
      );
    });
    target.any('/*', (res) => sendError(res, 404, 'not found'));
  };
  registerRoutes(app);
  // A renewed certificate is served without a restart (to clients that send SNI; see the file).
  const reloading =
    certificateFiles && certificate
      ? reloadableCertificate(app, registerRoutes, certificateFiles, {
          initial: certificate,
          publicHost: config.EARSHOT_INGEST_PUBLIC_URL ? new URL(config.EARSHOT_INGEST_PUBLIC_URL).hostname : null,
          intervalMs: config.EARSHOT_TLS_WATCH_INTERVAL_MS,
          logger,
          metrics: runtime.metrics,
        })
      : null;

  const listenSocket = await new Promise<us_listen_socket | false>((resolve) => {
    app.listen(config.EARSHOT_INGEST_HOST, config.EARSHOT_INGEST_PORT, resolve);
  });
  if (!listenSocket) {
    reloading?.close();
    throw new EarshotError(
      'EARSHOT_CONFIG_INVALID',
      `ingest cannot listen on ${config.EARSHOT_INGEST_HOST}:${config.EARSHOT_INGEST_PORT} (address in use, or a bad TLS certificate/key)`,
      { fields: { host: config.EARSHOT_INGEST_HOST, port: config.EARSHOT_INGEST_PORT } },
    );
  }
  const port = uWS.us_socket_local_port(listenSocket as unknown as Parameters<typeof uWS.us_socket_local_port>[0]);
  const host = config.EARSHOT_INGEST_HOST.includes(':') ? `[${config.EARSHOT_INGEST_HOST}]` : config.EARSHOT_INGEST_HOST;
  const url = `${tls ? 'wss' : 'ws'}://${host}:${port}`;

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const session of sessions) session.sweep(now);
  }, SWEEP_INTERVAL_MS);

  logger.info({ url, tls, chunkMs: config.EARSHOT_INGEST_CHUNK_MS, signature: config.EARSHOT_TWILIO_SIGNATURE }, 'ingest.listening');

  let stopped: Promise<void> | null = null;
  const stop = async (): Promise<void> => {
    stopping = true;
    reloading?.close();
    uWS.us_listen_socket_close(listenSocket);
    for (const session of [...sessions]) session.shutdown();
    const deadline = Date.now() + PENDING_UPGRADES_WAIT_MS;
    while (pendingUpgrades > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const { lost } = await (publisher as CallPublisher).drain(options.drainTimeoutMs ?? 10_000);
    clearInterval(sweep);
    // Also closes idle keep-alive HTTP connections (present at run time, missing from the typings).
    (app as unknown as { close?: () => void }).close?.();
    logger.info({ lost }, 'ingest.stopped');
  };

  return {
    url,
    port,
    stop: () => {
      stopped ??= stop();
      return stopped;
    },
  };
}

function createApp(uWS: Uws, tls: { cert: string; key: string } | null): TemplatedApp {
  if (!tls) return uWS.App();
  try {
    return uWS.SSLApp({ cert_file_name: tls.cert, key_file_name: tls.key });
  } catch (error) {
    throw new EarshotError(
      'EARSHOT_CONFIG_INVALID',
      `EARSHOT_TLS_CERT_FILE/EARSHOT_TLS_KEY_FILE: ${tls.cert} and ${tls.key} are not a PEM certificate and its private key`,
      { fields: { cert: tls.cert, key: tls.key }, cause: error },
    );
  }
}

async function checkReadable(files: readonly string[]): Promise<void> {
  for (const file of files) {
    try {
      await access(file, constants.R_OK);
    } catch {
      throw new EarshotError('EARSHOT_CONFIG_INVALID', `EARSHOT_TLS_CERT_FILE/EARSHOT_TLS_KEY_FILE: cannot read ${file}`, {
        fields: { file },
      });
    }
  }
}
