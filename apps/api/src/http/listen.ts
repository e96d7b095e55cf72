import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import type { Logger } from '../../../shared/src/logger.js';
import type { Registry } from '../../../shared/src/metrics.js';
import { type CertificateFiles, type LoadedCertificate, readCertificate, watchCertificate } from '../../../shared/src/tls-certificate.js';
import { errorBody } from './errors.js';
import { REQUEST_ID_HEADER } from './request-context.js';

/**
 * The listening socket (SPEC §3): HTTPS with TLS 1.2 or newer when EARSHOT_TLS_CERT_FILE and
 * EARSHOT_TLS_KEY_FILE are set, plain HTTP otherwise, and plain HTTP only on a loopback
 * address: anything else refuses to start, because the secret header would cross the network
 * in clear text. The certificate is reloaded without a restart when its files change or on
 * SIGHUP (apps/shared/src/tls-certificate.ts).
 */
export interface Listening {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(bare);
}

/** The API's certificate: read and checked at start, reloaded by `listen` when the files change. */
export interface ApiTls {
  readonly files: CertificateFiles;
  readonly certificate: LoadedCertificate;
  readonly watchIntervalMs: number;
}

export function tlsOptions(config: Config): ApiTls | null {
  const certFile = config.EARSHOT_TLS_CERT_FILE;
  const keyFile = config.EARSHOT_TLS_KEY_FILE;
  if (!certFile || !keyFile) {
    if (!isLoopback(config.EARSHOT_API_HOST)) {
      throw new EarshotError(
        'EARSHOT_CONFIG_INVALID',
        `EARSHOT_API_HOST is ${config.EARSHOT_API_HOST} but no certificate is configured: plain HTTP is allowed only on loopback (SPEC §3). Set EARSHOT_TLS_CERT_FILE and EARSHOT_TLS_KEY_FILE, or EARSHOT_API_HOST=127.0.0.1`,
      );
    }
    return null;
  }
  const files = { certFile, keyFile };
  return { files, certificate: readCertificate(files), watchIntervalMs: config.EARSHOT_TLS_WATCH_INTERVAL_MS };
}

export async function listen(
  handler: RequestListener,
  options: { host: string; port: number; tls: ApiTls | null; logger: Logger; metrics: Registry },
): Promise<Listening> {
  const tls = options.tls;
  const secure = (c: LoadedCertificate) => ({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2' as const });
  const server = tls ? createHttpsServer(secure(tls.certificate), handler) : createHttpServer(handler);
  // A renewed certificate is used from the next handshake on; open connections keep theirs.
  const watcher = tls
    ? watchCertificate(tls.files, {
        listener: 'api',
        initial: tls.certificate,
        intervalMs: tls.watchIntervalMs,
        logger: options.logger,
        metrics: options.metrics,
        apply: (next) => (server as HttpsServer).setSecureContext(secure(next)),
      })
    : null;
  // Slow clients cannot hold sockets forever (Node's default request timeout is 5 minutes).
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  // Requests Node itself rejects (bad request line, oversized headers) still get the error shape.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const message =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'request headers are too large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'request not received completely in time'
          : 'malformed HTTP request';
    const body = JSON.stringify(errorBody(requestId, 400, message));
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${REQUEST_ID_HEADER}: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    watcher?.close();
    throw error;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        watcher?.close();
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight requests get a moment to finish; then the sockets go.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      }),
  };
}
