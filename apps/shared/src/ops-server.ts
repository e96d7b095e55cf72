import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventLogReachable, PROBE_TIMEOUT_MS } from './event-log-probe.js';
import type { Runtime } from './runtime.js';

/**
 * `/healthz`, `/readyz` and `/metrics` for a process whose apps have no HTTP port of their own
 * (asr, webhooks, store, export in distributed mode), so Prometheus and an orchestrator can see
 * them as they see the api and ingest (SPEC §3.6). Plain node:http, on `EARSHOT_OPS_PORT`;
 * nothing but these three read-only paths, no credentials, so bind it to a private interface.
 */
export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startOpsServer(
  runtime: Runtime,
  options: { host: string; port: number; apps: readonly string[] },
): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, error(405, `${req.method} is not allowed here; use GET`));
    if (path === '/healthz') return send(200, { status: 'ok', apps: options.apps });
    if (path === '/readyz') {
      void eventLogReachable(runtime.eventLog).then((ok) =>
        ok
          ? send(200, { status: 'ready', apps: options.apps, checks: { eventLog: 'ok' } })
          : send(503, error(503, `not ready: the event log did not answer within ${PROBE_TIMEOUT_MS} ms`)),
      );
      return;
    }
    if (path === '/metrics') {
      void runtime.metrics.metrics().then(
        (text) => send(200, text, runtime.metrics.contentType),
        (e: Error) => send(500, error(500, `metrics failed: ${e.message}`)),
      );
      return;
    }
    send(404, error(404, `no route ${path}: this port serves /healthz, /readyz and /metrics`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const error = (status: number, message: string) => ({ error: { requestId: null, code: `${status}-01`, message } });
