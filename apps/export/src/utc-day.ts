import { EarshotError } from '../../shared/src/errors.js';

/** UTC calendar days as "YYYY-MM-DD" (the feed's date key) and their bounds in epoch ms. */
export const DAY_MS = 86_400_000;

/** Start of the day in epoch ms; refuses anything that is not a real calendar date. */
export function utcDayStart(date: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (!match || Number.isNaN(ms) || utcDate(ms) !== date) {
    throw new EarshotError('EARSHOT_USAGE', `date must be a calendar date YYYY-MM-DD, not '${date.slice(0, 40)}'`);
  }
  return ms;
}

export const utcDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The UTC day before the one `ms` falls in: what a run at 02:00 exports. */
export const previousUtcDate = (ms: number): string => utcDate(Math.floor(ms / DAY_MS) * DAY_MS - DAY_MS);
