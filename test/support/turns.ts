import type { CorpusUtterance } from '../../scripts/test-audio/corpus.js';

/**
 * The corpus call is scripted in turns, but one turn may hold two sentences with a pause
 * between them long enough to end an utterance (festival's sentence pause is ~400-450 ms; the
 * default endpoint is 400 ms). Whether a turn arrives as one utterance or two is endpointing's
 * business, tested in test/asr/engine; every other test judges the pipeline per turn: the
 * utterances of a turn are put back together, and only utterances outside every turn, or
 * overlapping each other, are errors.
 */
export interface Timed {
  readonly startMs: number;
  readonly endMs: number;
  readonly text: string | null;
}

export interface TurnResult<U extends Timed> {
  readonly turn: CorpusUtterance;
  /** The utterances that fall in this turn, in time order (empty: the turn was lost). */
  readonly parts: readonly U[];
  /** Start of the first part, end of the last, texts joined; undefined when there are no parts. */
  readonly startMs: number | undefined;
  readonly endMs: number | undefined;
  readonly text: string;
}

export interface ByTurn<U extends Timed> {
  readonly turns: readonly TurnResult<U>[];
  /** Utterances that overlap no turn of the script (an invented one, or one at the wrong time). */
  readonly stray: readonly U[];
  /** Utterances that overlap an earlier one in time: the same speech delivered twice. */
  readonly overlapping: readonly U[];
}

const overlapMs = (a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }) =>
  Math.min(a.endMs, b.endMs) - Math.max(a.startMs, b.startMs);

/** Groups one track's utterances by the scripted turn each overlaps most. */
export function byTurn<U extends Timed>(utterances: readonly U[], turns: readonly CorpusUtterance[]): ByTurn<U> {
  const sorted = [...utterances].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
  const parts = turns.map(() => [] as U[]);
  const stray: U[] = [];
  const overlapping: U[] = [];
  let lastEnd = Number.NEGATIVE_INFINITY;
  for (const u of sorted) {
    if (u.startMs < lastEnd) overlapping.push(u);
    lastEnd = Math.max(lastEnd, u.endMs);
    let best = -1;
    let bestOverlap = 0;
    turns.forEach((turn, i) => {
      const o = overlapMs(u, turn);
      if (o > bestOverlap) [best, bestOverlap] = [i, o];
    });
    if (best < 0) stray.push(u);
    else parts[best]?.push(u);
  }
  return {
    turns: turns.map((turn, i) => {
      const mine = parts[i] as U[];
      return {
        turn,
        parts: mine,
        startMs: mine[0]?.startMs,
        endMs: mine.at(-1)?.endMs,
        text: mine.map((u) => u.text ?? '').join(' '),
      };
    }),
    stray,
    overlapping,
  };
}

/** True once every turn has utterances reaching to within `toleranceMs` of its end: the whole track is in. */
export function everyTurnEnded<U extends Timed>(utterances: readonly U[], turns: readonly CorpusUtterance[], toleranceMs = 300): boolean {
  return byTurn(utterances, turns).turns.every((r) => r.endMs !== undefined && r.endMs >= r.turn.endMs - toleranceMs);
}

/**
 * One track's utterances against its turns: `lost` counts turns with nothing, or whose first
 * or last part is missing (the speech found starts or ends more than `toleranceMs` off the
 * truth); `duplicated` counts utterances overlapping an earlier one, or outside every turn.
 */
export function lostAndDuplicated<U extends Timed>(
  utterances: readonly U[],
  turns: readonly CorpusUtterance[],
  toleranceMs = 300,
): { lost: number; duplicated: number } {
  const { turns: results, stray, overlapping } = byTurn(utterances, turns);
  const lost = results.filter(
    (r) =>
      r.startMs === undefined || r.endMs === undefined || r.startMs > r.turn.startMs + toleranceMs || r.endMs < r.turn.endMs - toleranceMs,
  ).length;
  return { lost, duplicated: stray.length + overlapping.length };
}
