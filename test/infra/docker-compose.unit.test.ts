import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { APPS } from '../../apps/cli/src/commands/start.command.js';
import { configSchema } from '../../apps/shared/src/config.js';

/**
 * docker-compose.yml cannot run here (no Docker engine), so what can be checked without one
 * is checked: every app of `earshot start` has its service in distributed mode, every
 * EARSHOT_* variable it sets is a real setting (a typo would otherwise be refused only at
 * start-up on someone else's machine), app services wait for healthy servers, and every
 * named volume is declared.
 */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

t.test('every gateway app has a service that runs it in distributed mode on the project image', async (t) => {
  for (const app of APPS) {
    const service = Object.values(compose.services).find((s) => s.command?.join(' ') === `start --mode distributed --apps ${app}`);
    t.ok(service, `${app}: a service runs 'earshot start --mode distributed --apps ${app}'`);
    t.ok(service?.build, `${app}: built from the project (one image for every app)`);
    for (const server of ['kafka', 'registry', 'clickhouse']) {
      t.equal(service?.depends_on?.[server]?.condition, 'service_healthy', `${app}: waits for a healthy ${server}`);
    }
  }
});

t.test('every EARSHOT_* variable in docker-compose.yml is a setting of the config schema', async (t) => {
  const known = new Set(Object.keys(configSchema.shape));
  const used = Object.values(compose.services)
    .flatMap((s) => Object.keys(s.environment ?? {}))
    .filter((name) => name.startsWith('EARSHOT_'));
  t.ok(used.length > 5, `${used.length} variables set`);
  for (const name of new Set(used)) t.ok(known.has(name), `${name} is a known setting`);
});

t.test('named volumes are declared; servers have health checks', async (t) => {
  for (const [name, service] of Object.entries(compose.services)) {
    for (const volume of service.volumes ?? []) {
      const source = volume.split(':')[0] ?? '';
      if (source.startsWith('.') || source.startsWith('/')) continue; // a bind mount
      t.ok(source in compose.volumes, `${name}: volume '${source}' is declared`);
    }
  }
  for (const server of ['kafka', 'registry', 'clickhouse']) t.ok(compose.services[server]?.image, `${server} runs from an image`);
});
