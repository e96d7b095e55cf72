import type { TemplatedApp } from 'uWebSockets.js';
import { isIP } from 'node:net';
import type { Logger } from '../../shared/src/logger.js';
import type { Registry } from '../../shared/src/metrics.js';
import { type CertificateFiles, type LoadedCertificate, watchCertificate } from '../../shared/src/tls-certificate.js';

/**
 * Certificate reloading for uWebSockets.js, which cannot swap the certificate of a listening
 * SSLApp. What it can do (uWS 20.30, measured): serve per-SNI-name contexts that are added and
 * removed at run time (`addServerName`/`removeServerName`), each with its own router (`domain`).
 * So every host name a client asks for (SNI) that the certificate covers gets a context of its
 * own, made from the files as they are now, with the same routes; on a new certificate those
 * contexts are replaced. Open sockets keep the context they were made with.
 *
 * The limit: a client that sends no SNI (one that connects to an IP address) gets the context
 * the app was created with, i.e. the certificate read at start, until a restart. Twilio always
 * connects to a host name. Closing and re-listening a new SSLApp on the port was tried and
 * rejected: refused connections during the swap, and a segmentation fault under load.
 *
 * This uWS build prints "Browsed to SNI"/"Cannot browse to SNI" lines on stdout when routes are
 * registered under a name (once per name and per reload).
 */

/** At most this many names get a context of their own (a wildcard certificate could match any). */
const MAX_SERVER_NAMES = 32;

export function reloadableCertificate(
  app: TemplatedApp,
  registerRoutes: (target: TemplatedApp) => void,
  files: CertificateFiles,
  options: {
    readonly initial: LoadedCertificate;
    readonly publicHost: string | null;
    readonly intervalMs: number;
    readonly logger: Logger;
    readonly metrics: Registry;
  },
): { close(): void } {
  const names = new Set<string>();
  let current = options.initial;
  const uwsFiles = { cert_file_name: files.certFile, key_file_name: files.keyFile };
  const covered = (name: string): boolean => current.x509.checkHost(name) !== undefined;
  const add = (name: string): void => {
    names.add(name);
    app.addServerName(name, uwsFiles);
    app.domain(name);
    registerRoutes(app);
    app.domain(''); // no such name: back to the default router
  };
  // Called during a handshake for a name with no context yet; what is added here serves it.
  app.missingServerName((name) => {
    if (names.size < MAX_SERVER_NAMES && covered(name)) add(name);
  });
  if (options.publicHost && isIP(options.publicHost) === 0 && covered(options.publicHost)) add(options.publicHost);

  const watcher = watchCertificate(files, {
    listener: 'ingest',
    initial: options.initial,
    intervalMs: options.intervalMs,
    logger: options.logger,
    metrics: options.metrics,
    apply: (next) => {
      current = next;
      for (const name of [...names]) {
        app.removeServerName(name);
        names.delete(name);
        if (covered(name)) add(name);
      }
    },
  });
  return { close: () => watcher.close() };
}
