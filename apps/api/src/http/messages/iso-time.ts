/**
 * `new Date(ms).toISOString()` for the 2,000 timestamps of a 1,000-item messages response,
 * about ten times faster: the date part is computed once per UTC day (a call rarely spans
 * two), the time of day by arithmetic. Measured here: toISOString 10-16 µs per call on the
 * loaded shared machine, this under 1 µs. Same output for every ms in [0, 253402300800000)
 * (years 1970-9999), checked against toISOString by test/api/messages-iso.unit.test.ts.
 */
const DAY_MS = 86_400_000;
let cachedDay = Number.NaN;
let cachedPrefix = '';

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

export function isoTime(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 253_402_300_800_000) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11); // "YYYY-MM-DDT"
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${cachedPrefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(rest - seconds * 1000)}Z`;
}
