import { type ParseArgsConfig, parseArgs } from 'node:util';
import { EarshotError } from '../../shared/src/errors.js';

/** Strict option parsing; a bad option fails with the command's usage text. */
export function parseOptions<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new EarshotError('EARSHOT_USAGE', `${(error as Error).message}\n\n${usage}`);
  }
}
