import { loadEarshotConfig } from '../shared/src/config.js';
import { isEarshotError } from '../shared/src/errors.js';
import { appsCommand } from './src/commands/apps.command.js';
import { auditHashCommand } from './src/commands/audit-hash.command.js';
import { demoCommand } from './src/commands/demo.command.js';
import { exportCommand } from './src/commands/export.command.js';
import { infraCommand } from './src/commands/infra.command.js';
import { simulateCallCommand } from './src/commands/simulate-call.command.js';
import { startCommand } from './src/commands/start.command.js';
import { testCommand } from './src/commands/test.command.js';
import { transcribeCommand } from './src/commands/transcribe.command.js';

/**
 * `earshot <command>`: one executable for the gateway, its servers and its tests (SPEC 11).
 * Failures print one line (`earshot: <reason>`) and exit non-zero.
 */
const USAGE = `Usage: earshot <command> [options]

Commands:
  start                 run the gateway (embedded mode by default)
  apps                  create, list, rotate, disable apps (tenants) and set their webhooks
  demo                  play a two-party sample call and watch it transcribed live
  simulate-call         play calls to a running gateway as Twilio would
  transcribe FILE       transcribe an audio file offline with the live path's VAD and model
  export --date DAY     run the daily File Exporter for one UTC day by hand
  audit-hash VALUE      the audit trail's keyed hash of a Call SID or client address
  infra up|down|status  run the local Kafka, schema registry and ClickHouse on loopback
  test                  lint, type-check, bring the servers up and run every test

Run 'earshot <command> --help' for a command's options.
Settings come from EARSHOT_* environment variables (and EARSHOT_CONFIG_FILE); see README.md.`;

const commands: Record<string, (argv: string[], config: () => ReturnType<typeof loadEarshotConfig>) => Promise<number>> = {
  start: startCommand,
  apps: appsCommand,
  demo: demoCommand,
  'simulate-call': simulateCallCommand,
  infra: infraCommand,
  test: testCommand,
  transcribe: transcribeCommand,
  export: exportCommand,
  'audit-hash': auditHashCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name === undefined ? 1 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`earshot: unknown command '${name}'\n\n${USAGE}`);
    return 2;
  }
  return command(rest, () => loadEarshotConfig());
}

let settled = false;
// A command must never end silently: if the event loop drains while it still waits on
// something (a bug), say so and fail instead of exiting 0 with no output.
process.once('beforeExit', () => {
  if (!settled) {
    console.error('earshot: internal error: the command stopped waiting without finishing');
    process.exitCode = 70;
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (error: unknown) => {
    settled = true;
    const message =
      isEarshotError(error) || (error as { usage?: boolean }).usage ? (error as Error).message : String((error as Error).stack ?? error);
    console.error(`earshot: ${message}`);
    process.exitCode = 1;
  },
);
