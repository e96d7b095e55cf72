import type { Config } from '../../../../shared/src/config.js';

/**
 * Where Twilio opens the media WebSocket (SPEC §3.1): EARSHOT_INGEST_PUBLIC_URL when set (the
 * address Twilio sees, e.g. behind a load balancer), else the ingest listener itself: wss
 * when a certificate is configured, ws otherwise (loopback development only).
 */
export function ingestPublicUrl(config: Config): string {
  if (config.EARSHOT_INGEST_PUBLIC_URL) return config.EARSHOT_INGEST_PUBLIC_URL.replace(/\/+$/, '');
  const scheme = config.EARSHOT_TLS_CERT_FILE ? 'wss' : 'ws';
  const host = config.EARSHOT_INGEST_HOST.includes(':') ? `[${config.EARSHOT_INGEST_HOST}]` : config.EARSHOT_INGEST_HOST;
  return `${scheme}://${host}:${config.EARSHOT_INGEST_PORT}`;
}

/** A listener on every interface is no address Twilio can reach: such a URL needs EARSHOT_INGEST_PUBLIC_URL. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}
