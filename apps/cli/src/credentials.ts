import { readFileSync } from 'node:fs';
import { EarshotError } from '../../shared/src/errors.js';

/**
 * The `--credentials FILE` of a command that calls the API: the JSON `earshot apps create`
 * prints. A missing or malformed file fails with the command's usage text.
 */
export function readCredentials(path: string, usage: string): { apiId: string; apiSecret: string } {
  const fail = (message: string) => new EarshotError('EARSHOT_USAGE', `${message}\n\n${usage}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw fail(`--credentials ${path}: ${(error as Error).message}`);
  }
  const { apiId, apiSecret } = (parsed ?? {}) as { apiId?: unknown; apiSecret?: unknown };
  if (typeof apiId !== 'string' || typeof apiSecret !== 'string')
    throw fail(`--credentials ${path} must hold {"apiId": "...", "apiSecret": "..."}`);
  return { apiId, apiSecret };
}
