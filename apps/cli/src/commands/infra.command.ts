import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { parseOptions } from '../args.js';
import { Infra, SERVER_NAMES, type ServerName } from '../infra.js';

const USAGE = `Usage: earshot infra up|down|status [kafka|registry|clickhouse ...] [--json]

  up      install if needed, start Kafka, the schema registry and ClickHouse on loopback
          (reusing any that already run) and wait until each is ready
  down    stop the servers that 'infra up' started (never ones it did not start)
  status  what runs where

Settings: EARSHOT_INFRA_DIR (state, logs, pid files; default ./.earshot/infra),
EARSHOT_INFRA_CACHE_DIR (downloads; default ~/.cache/earshot), EARSHOT_INFRA_KAFKA_PORT (19092),
EARSHOT_INFRA_KAFKA_CONTROLLER_PORT (19093), EARSHOT_INFRA_REGISTRY_PORT (18081),
EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT (18123), EARSHOT_INFRA_CLICKHOUSE_TCP_PORT (19000).
Needs java 17+ and maven (apt-get install -y openjdk-17-jdk-headless maven) and apt-get for ClickHouse.`;

export async function infraCommand(argv: string[], config: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(argv, { json: { type: 'boolean' } }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [action, ...names] = positionals;
  for (const name of names) {
    if (!(SERVER_NAMES as readonly string[]).includes(name)) {
      throw new EarshotError('EARSHOT_USAGE', `unknown server '${name}': choose from ${SERVER_NAMES.join(', ')}\n\n${USAGE}`);
    }
  }
  const only = names.length > 0 ? (names as ServerName[]) : undefined;
  const infra = new Infra(config());
  const log = (line: string): void => console.error(`infra: ${line}`);
  switch (action) {
    case 'up': {
      const started = Date.now();
      const results = await infra.up(log, only);
      if (values.json) console.log(JSON.stringify(results));
      else {
        for (const r of results) {
          const how =
            r.action === 'started'
              ? `started in ${r.seconds.toFixed(1)} s`
              : r.state === 'running-external'
                ? 'already running (not ours)'
                : 'already running';
          console.log(`${r.name.padEnd(10)} ${r.endpoint.padEnd(45)} ${how}`);
        }
        console.log(`all ready in ${((Date.now() - started) / 1000).toFixed(1)} s; state and logs in ${infra.stateDir}`);
      }
      return 0;
    }
    case 'down':
      await infra.down(log, only);
      return 0;
    case 'status': {
      const statuses = (await infra.status()).filter((s) => !only || only.includes(s.name));
      if (values.json) console.log(JSON.stringify(statuses));
      else
        for (const s of statuses) console.log(`${s.name.padEnd(10)} ${s.endpoint.padEnd(45)} ${s.state}${s.pid ? ` (pid ${s.pid})` : ''}`);
      return 0;
    }
    default:
      throw new EarshotError('EARSHOT_USAGE', `infra needs up, down or status${action ? `, not '${action}'` : ''}\n\n${USAGE}`);
  }
}
