import { spawn } from 'node:child_process';
import t from 'tap';
import type { StoredUtterance } from '../../apps/shared/src/ports/transcript-store.port.js';
import { embeddedTestStore, TEST_DAY_START_MS } from '../support/store.js';

/**
 * DuckDB lets one process at a time open the file, yet `earshot export` (its own process) must
 * read the embedded store while `earshot start` writes it. Here a real second process writes
 * batch after batch while this one reads the whole day and a call, repeatedly: both sides get
 * their turn and every batch is eventually read.
 */
t.test('a writer process writing without pause and a reader process share the embedded store file', async (t) => {
  t.setTimeout(120_000); // a busy shared machine makes each DuckDB commit slow
  const made = embeddedTestStore({ idleCloseMs: 20, maxHoldMs: 200 });
  t.teardown(() => made.dispose());
  await made.store.migrate();
  const batches = 24;
  const perBatch = 20;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/store/support/embedded-writer.ts', made.location, String(batches), String(perBatch), '0'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));

  let reads = 0;
  let running = true;
  void exited.then(() => {
    running = false;
  });
  while (running) {
    const day: StoredUtterance[] = [];
    for await (const u of made.store.utterancesCreatedBetween(TEST_DAY_START_MS, TEST_DAY_START_MS + 86_400_000)) day.push(u);
    t.equal(day.length % perBatch, 0, 'a read sees whole batches only (each batch is one transaction)');
    reads += 1;
    await new Promise((r) => setTimeout(r, 10));
  }
  t.equal(await exited, 0, 'the writer never gave up on the lock');
  t.match(out, new RegExp(`batch ${batches - 1}\\ndone \\d+`));
  t.ok(reads >= 2, `the reader read while the writer was writing (${reads} reads)`);
  t.equal((await made.store.callMessages('tenant-a', 'CAwriter', 1000)).length, Math.min(1000, batches * perBatch));
  const opens = Number(/done (\d+)/.exec(out)?.[1]);
  t.ok(opens > 1, `the writer released the file between batches (${opens} opens)`);
});
