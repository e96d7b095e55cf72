import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * infra/kafka/new-cluster-id.sh draws the id start.sh formats a fresh broker with. Without its
 * redraw rule one draw in 64 starts with '-' (the CI failure of 2026-11-28), so 640 draws
 * without a dash fail to catch a missing rule with probability (63/64)^640, about 4 in 100,000.
 */
const SCRIPT = fileURLToPath(new URL('../../infra/kafka/new-cluster-id.sh', import.meta.url));

t.test('640 fresh cluster ids: 22 base64url characters, none starting with a dash, all different', async (t) => {
  const run = spawnSync('bash', ['-c', `for i in $(seq 640); do bash '${SCRIPT}' || exit 1; done`], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const ids = run.stdout.trim().split('\n');
  t.equal(ids.length, 640);
  const bad = ids.filter((id) => !/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(id));
  t.same(bad, [], 'every id is 22 base64url characters and none starts with a dash');
  t.equal(new Set(ids).size, ids.length, 'no id repeats');
  t.ok(
    ids.some((id) => id.includes('-')),
    'dashes still occur inside ids (the alphabet is base64url, not trimmed)',
  );
});
