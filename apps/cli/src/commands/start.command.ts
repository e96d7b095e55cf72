import { resolve } from 'node:path';
import { startApi } from '../../../api/main.js';
import { startAsrApp } from '../../../asr/main.js';
import { startExportApp } from '../../../export/main.js';
import { startIngest } from '../../../ingest/main.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { createLogger } from '../../../shared/src/logger.js';
import { startOpsServer } from '../../../shared/src/ops-server.js';
import { createRuntime } from '../../../shared/src/runtime.js';
import { AppAdmin } from '../../../shared/src/tenants/app-admin.js';
import { createTranscriptStore } from '../../../shared/src/transcript-store/transcript-store.js';
import { startStoreApp } from '../../../store/main.js';
import { startWebhooksApp } from '../../../webhooks/main.js';
import { parseOptions } from '../args.js';

export const APPS = ['ingest', 'api', 'asr', 'webhooks', 'store', 'export'] as const;
type AppName = (typeof APPS)[number];

const USAGE = `Usage: earshot start [--mode embedded|distributed] [--apps ${APPS.join(',')}]

Runs the gateway. Embedded mode (the default) runs every app in this one process with an
in-process event log and keeps its state under EARSHOT_DATA_DIR (default ./data): no servers
needed. Distributed mode uses Kafka (EARSHOT_KAFKA_BROKERS) and the schema registry
(EARSHOT_SCHEMA_REGISTRY_URL); 'earshot infra up' runs both locally, and each app can run in
its own process (--apps api) and scale out.
Stop with Ctrl-C: the gateway stops taking new work, finishes in-flight utterances and exits.`;

export async function startCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values } = parseOptions(argv, { mode: { type: 'string' }, apps: { type: 'string' } }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const config = { ...loadConfig() };
  if (values.mode !== undefined) {
    if (values.mode !== 'embedded' && values.mode !== 'distributed') {
      console.error(`earshot: --mode must be embedded or distributed, not '${values.mode}'`);
      return 2;
    }
    config.EARSHOT_MODE = values.mode;
  }
  const apps = parseApps(values.apps);
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'earshot' });
  const runtime = await createRuntime(config, { logger, name: 'earshot' });
  // Shutdown order: ingest stops taking audio, the API stops taking commands, then asr
  // finishes the utterances in flight and commits.
  const stops: {
    ingest?: () => Promise<void>;
    api?: () => Promise<void>;
    asr?: () => Promise<void>;
    webhooks?: () => Promise<void>;
    store?: () => Promise<void>;
    export?: () => Promise<void>;
    ops?: () => Promise<void>;
  } = {};
  const stopAll = async (): Promise<void> => {
    for (const name of ['ingest', 'api', 'asr', 'webhooks', 'store', 'export', 'ops'] as const)
      await stops[name]?.().catch((error) => logger.error({ err: error }, `${name}.stop_failed`));
    await transcripts?.close().catch((error) => logger.error({ err: error }, 'store.close_failed'));
    await runtime.close();
  };
  // One transcript store for the apps of this process that use it (the store app writes, the
  // API reads): in embedded mode that is one DuckDB file, which must not be opened twice.
  const transcripts = apps.has('store') || apps.has('api') ? createTranscriptStore(config, logger.child({ app: 'store' })) : undefined;
  const lines: string[] = [];
  try {
    await transcripts?.migrate();
    if (apps.has('store')) {
      const store = await startStoreApp(runtime, { store: transcripts });
      stops.store = store.stop;
      lines.push(`store     ${store.describe}`);
    }
    if (apps.has('webhooks')) {
      const webhooks = await startWebhooksApp(runtime);
      stops.webhooks = webhooks.stop;
      lines.push(`webhooks  ${webhooks.describe}`);
    }
    if (apps.has('asr')) {
      const asr = await startAsrApp(runtime);
      stops.asr = asr.stop;
      lines.push(`asr       ${asr.describe}`);
    }
    let ingestUrl = config.EARSHOT_INGEST_PUBLIC_URL;
    if (apps.has('ingest')) {
      const ingest = await startIngest(runtime);
      stops.ingest = ingest.stop;
      ingestUrl ??= ingest.url; // the real port when EARSHOT_INGEST_PORT=0
      lines.push(`ingest    ${ingest.url}/twilio-media/<token>`);
    }
    if (apps.has('api')) {
      const api = await startApi({ ...runtime, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingestUrl } }, { store: transcripts });
      stops.api = api.stop;
      lines.push(`api       ${api.url}`);
      lines.push(`live      ${api.url}/live   (live transcripts: log in with an app's api id and secret)`);
    }
    if (apps.has('export')) {
      // The daily File Exporter (scheduler); reads the transcript store, writes EARSHOT_EXPORT_DIR.
      const exporter = await startExportApp(runtime);
      stops.export = exporter.stop;
      lines.push(`export    ${exporter.describe}`);
    }
    if (config.EARSHOT_OPS_PORT !== undefined && !apps.has('api') && !apps.has('ingest')) {
      // Apps without an HTTP port of their own still answer health checks and scrapes.
      const ops = await startOpsServer(runtime, { host: config.EARSHOT_OPS_HOST, port: config.EARSHOT_OPS_PORT, apps: [...apps] });
      stops.ops = ops.close;
      lines.push(`ops       ${ops.url}   (/metrics, /healthz, /readyz)`);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const where =
    config.EARSHOT_MODE === 'embedded' ? `state in ${resolve(config.EARSHOT_DATA_DIR)}` : `Kafka at ${config.EARSHOT_KAFKA_BROKERS}`;
  console.log(`Earshot is running in ${config.EARSHOT_MODE} mode (${where}).`);
  for (const line of lines) console.log(`  ${line}`);
  if (config.EARSHOT_MODE === 'embedded' && runtime.apps.list().length === 0) {
    // First run: a newcomer needs credentials to try it. Shown once, like `earshot apps create`.
    const created = await new AppAdmin(runtime.eventLog, runtime.credentials).create({ name: 'first app' });
    console.log('Created your first app (keep the secret: it is shown only this once):');
    console.log(`  ${JSON.stringify(created)}`);
  }
  console.log('Press Ctrl-C to stop.');

  await new Promise<void>((resolveSignal) => {
    process.once('SIGINT', resolveSignal);
    process.once('SIGTERM', resolveSignal);
  });
  logger.info('earshot.shutting_down');
  await stopAll();
  console.log('Earshot stopped: in-flight utterances finished, offsets committed.');
  return 0;
}

function parseApps(list: string | undefined): Set<AppName> {
  if (list === undefined) return new Set(APPS);
  const names = list.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(APPS as readonly string[]).includes(name))
      throw new EarshotError('EARSHOT_USAGE', `--apps: unknown app '${name}'; choose from ${APPS.join(', ')}`);
  }
  return new Set(names as AppName[]);
}
