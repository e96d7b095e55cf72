import fc from 'fast-check';
import t from 'tap';
import { isoTime } from '../../apps/api/src/http/messages/iso-time.js';

/** The messages API's fast ISO 8601 formatter says exactly what Date#toISOString says. */
t.test('isoTime matches toISOString', async (t) => {
  for (const ms of [
    0,
    1,
    999,
    1000,
    86_399_999,
    86_400_000,
    Date.UTC(2026, 10, 27, 23, 59, 59, 999),
    Date.UTC(2028, 1, 29, 12),
    253_402_300_799_999,
  ])
    t.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  t.equal(isoTime(-1), new Date(-1).toISOString(), 'outside the fast range: falls back');
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), fc.integer({ min: 0, max: 200_000 }), (ms, step) => {
        // Two calls in a row: the cached day must not leak into the next one.
        return isoTime(ms) === new Date(ms).toISOString() && isoTime(ms + step) === new Date(ms + step).toISOString();
      }),
      { numRuns: 5000 },
    ),
  );
});
