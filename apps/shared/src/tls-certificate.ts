import { X509Certificate } from 'node:crypto';
import { readFileSync, type StatsListener, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { EarshotError } from './errors.js';
import type { Logger } from './logger.js';
import { Counter, type Registry } from './metrics.js';

/**
 * The TLS certificate of a listener (EARSHOT_TLS_CERT_FILE + EARSHOT_TLS_KEY_FILE), read,
 * checked as a pair, and reloaded without a restart when the files change (polled every
 * EARSHOT_TLS_WATCH_INTERVAL_MS) or on SIGHUP. A replacement that is not a valid pair (say the
 * certificate was written and the key not yet) is refused and the old one stays in use; the
 * next change tries again. Used by the API (Node `setSecureContext`) and ingest (uWS SNI
 * contexts); docs/security.md says what each does with a new certificate.
 */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface LoadedCertificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly x509: X509Certificate;
  /** SHA-256 fingerprint of the leaf certificate, as openssl prints it. */
  readonly fingerprint: string;
}

/** Reads and checks the pair; throws EARSHOT_CONFIG_INVALID naming the setting and the problem. */
export function readCertificate(files: CertificateFiles): LoadedCertificate {
  const read = (name: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new EarshotError('EARSHOT_CONFIG_INVALID', `${name}: cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
        fields: { file: path },
      });
    }
  };
  const cert = read('EARSHOT_TLS_CERT_FILE', files.certFile);
  const key = read('EARSHOT_TLS_KEY_FILE', files.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    // OpenSSL checks that the key belongs to the certificate ("key values mismatch").
    createSecureContext({ cert, key });
  } catch (error) {
    throw new EarshotError(
      'EARSHOT_CONFIG_INVALID',
      `EARSHOT_TLS_CERT_FILE/EARSHOT_TLS_KEY_FILE: ${files.certFile} and ${files.keyFile} are not a PEM certificate and its private key (${(error as Error).message})`,
      { cause: error, fields: { certFile: files.certFile, keyFile: files.keyFile } },
    );
  }
  return { cert, key, x509, fingerprint: x509.fingerprint256 };
}

export interface CertificateWatcher {
  /** The certificate in use. */
  current(): LoadedCertificate;
  /** Re-reads the files now (what SIGHUP does); true when a new certificate was applied. */
  reload(): boolean;
  close(): void;
}

const reloadCounters = new WeakMap<Registry, Counter<'listener' | 'outcome'>>();

function reloadCounter(registry: Registry): Counter<'listener' | 'outcome'> {
  let counter = reloadCounters.get(registry);
  if (!counter) {
    counter = new Counter({
      name: 'earshot_tls_certificate_reloads_total',
      help: 'TLS certificate reloads by listener and outcome (applied, or refused: not a valid pair)',
      labelNames: ['listener', 'outcome'] as const,
      registers: [registry],
    });
    reloadCounters.set(registry, counter);
  }
  return counter;
}

/**
 * Watches the pair and calls `apply` with each new, valid certificate (not with the one read at
 * start, which `initial` is). `intervalMs` 0 disables polling; SIGHUP always reloads.
 */
export function watchCertificate(
  files: CertificateFiles,
  options: {
    readonly listener: string;
    readonly initial: LoadedCertificate;
    readonly intervalMs: number;
    readonly logger: Logger;
    readonly metrics: Registry;
    readonly apply: (certificate: LoadedCertificate) => void;
  },
): CertificateWatcher {
  const counter = reloadCounter(options.metrics);
  let current = options.initial;
  let lastRefused = '';
  const reload = (): boolean => {
    let next: LoadedCertificate;
    try {
      next = readCertificate(files);
    } catch (error) {
      // Logged once per distinct problem: polling must not repeat it every interval.
      const message = (error as Error).message;
      if (message !== lastRefused) {
        lastRefused = message;
        counter.inc({ listener: options.listener, outcome: 'refused' });
        options.logger.warn({ listener: options.listener, problem: message }, 'tls.certificate_refused: keeping the certificate in use');
      }
      return false;
    }
    lastRefused = '';
    if (next.fingerprint === current.fingerprint && next.key.equals(current.key)) return false;
    try {
      options.apply(next);
    } catch (error) {
      counter.inc({ listener: options.listener, outcome: 'refused' });
      options.logger.error({ err: error, listener: options.listener }, 'tls.certificate_apply_failed: keeping the certificate in use');
      return false;
    }
    current = next;
    counter.inc({ listener: options.listener, outcome: 'applied' });
    options.logger.info(
      { listener: options.listener, fingerprint: next.fingerprint, subject: next.x509.subject, validTo: next.x509.validTo },
      'tls.certificate_reloaded',
    );
    return true;
  };
  const onStat: StatsListener = (now, before) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) reload();
  };
  if (options.intervalMs > 0) {
    watchFile(files.certFile, { interval: options.intervalMs, persistent: false }, onStat);
    watchFile(files.keyFile, { interval: options.intervalMs, persistent: false }, onStat);
  }
  const onHangup = (): void => {
    reload();
  };
  process.on('SIGHUP', onHangup);
  return {
    current: () => current,
    reload,
    close: () => {
      process.off('SIGHUP', onHangup);
      if (options.intervalMs > 0) {
        unwatchFile(files.certFile, onStat);
        unwatchFile(files.keyFile, onStat);
      }
    },
  };
}
