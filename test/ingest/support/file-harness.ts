import t from 'tap';
import { type Harness, startHarness } from '../support.js';

/**
 * One ingest harness shared by every test of a file (await it at the top level): closed when
 * the file's tests are done. A test that needs its own settings starts its own harness.
 */
export async function fileHarness(): Promise<Harness> {
  const h = await startHarness();
  t.teardown(() => h.close());
  return h;
}
