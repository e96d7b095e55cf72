/**
 * Distributed-mode settings shared by a benchmark and the servers it forks: fixed test keys
 * (the same values as test/support/runtime.ts), so tokens the parent issues verify in the
 * child. Never use these keys outside benchmarks and tests.
 */
export const BENCH_ENV: Readonly<Record<string, string>> = {
  EARSHOT_MODE: 'distributed',
  EARSHOT_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
  EARSHOT_LOG_LEVEL: 'error',
};
