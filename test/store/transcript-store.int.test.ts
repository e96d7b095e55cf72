import t from 'tap';
import { transcriptStoreContract } from '../contracts/transcript-store.js';
import { clickhouseTestStore, embeddedTestStore } from '../support/store.js';

t.test('transcript store contract: ClickHouse adapter (real ClickHouse 18.16)', async (t) => {
  transcriptStoreContract(t, () => clickhouseTestStore());
});

t.test('transcript store contract: embedded adapter (DuckDB file)', async (t) => {
  transcriptStoreContract(t, () => embeddedTestStore());
});
