import { createLogger } from '../../../apps/shared/src/logger.js';
import { DuckDbTranscriptStore } from '../../../apps/shared/src/transcript-store/embedded/duckdb-transcript-store.js';
import { batchOf, utterance } from '../../support/store.js';

/**
 * A second process writing to an embedded store file, as `earshot start` does while
 * `earshot export` reads: argv = <file> <batches> <per batch> <pause ms between batches>. Prints one line per written batch,
 * then "done <opens>".
 */
const [path, batches, perBatch, pauseMs] = process.argv.slice(2) as [string, string, string, string];
const store = new DuckDbTranscriptStore(path, { logger: createLogger({ level: 'fatal', name: 'writer' }), maxHoldMs: 30 }); // short: even a fast run of the batches must hand the file over
await store.migrate();
for (let b = 0; b < Number(batches); b++) {
  const us = Array.from({ length: Number(perBatch) }, (_, i) => utterance({ callSid: 'CAwriter', startMs: b * 100_000 + i * 10 }));
  await store.writeBatch(batchOf({ utterances: us }));
  console.log(`batch ${b}`);
  if (Number(pauseMs) > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)));
}
console.log(`done ${store.opens}`);
await store.close();
