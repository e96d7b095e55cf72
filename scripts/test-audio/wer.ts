/**
 * Word error rate for the ASR tests and benchmark: word-level Levenshtein distance over the
 * reference length, after normalising both sides the same way. Moonshine writes numbers as
 * digits ("4111 1111") and our scripts spell them, so digits are spelled out one by one; case,
 * punctuation and hyphens are dropped; "Mr."/"Mrs."/"Dr." count as the spoken words.
 */
const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** Spoken forms of abbreviated titles (Moonshine writes "Mr.", transcripts say "mister"). */
const TITLES: Readonly<Record<string, string>> = { mr: 'mister', mrs: 'missus', dr: 'doctor' };

export function normalizeWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/(\d)/g, (d) => ` ${DIGITS[Number(d)]} `)
    .replace(/[-–—/]/g, ' ')
    .replace(/[^a-z' ]/g, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter((w) => w.length > 0)
    .map((w) => TITLES[w] ?? w);
}

export interface WerResult {
  readonly errors: number;
  readonly words: number;
  readonly wer: number;
}

export function wordErrors(reference: string, hypothesis: string): WerResult {
  const ref = normalizeWords(reference);
  const hyp = normalizeWords(hypothesis);
  let previous = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const current = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const substitution = (previous[j - 1] as number) + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, (previous[j] as number) + 1, (current[j - 1] as number) + 1);
    }
    previous = current;
  }
  const errors = previous[hyp.length] as number;
  return { errors, words: ref.length, wer: ref.length === 0 ? (hyp.length === 0 ? 0 : 1) : errors / ref.length };
}

/** Pooled WER over pairs (total errors / total reference words). */
export function pooledWer(pairs: readonly (readonly [reference: string, hypothesis: string])[]): WerResult {
  let errors = 0;
  let words = 0;
  for (const [reference, hypothesis] of pairs) {
    const r = wordErrors(reference, hypothesis);
    errors += r.errors;
    words += r.words;
  }
  return { errors, words, wer: words === 0 ? 0 : errors / words };
}
