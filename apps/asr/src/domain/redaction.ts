/**
 * Redaction (SPEC §7): before any text leaves the asr consumer, sensitive numbers are masked
 * with `#` per character. Numbers may be written ("4111 1111 1111 1111") or spoken ("four one
 * one one", "double seven", "oh"), so the text is first read as a sequence of tokens where
 * each token knows the digits it stands for and its character span; rules then match runs of
 * digit tokens and mask the spans they cover (separators between masked tokens stay).
 */
export interface RedactionRules {
  readonly cardNumbers: boolean;
  readonly ssn: boolean;
  /** PINs, CVVs and 3-4 digit codes after a cue word. */
  readonly cuedCodes: boolean;
  /** 9-10 digit numbers (account, routing, national ids) and phone numbers (7+ digits). */
  readonly longNumbers: boolean;
  readonly emails: boolean;
}

export const DEFAULT_RULES: RedactionRules = { cardNumbers: true, ssn: true, cuedCodes: true, longNumbers: true, emails: true };

const UNITS: Record<string, string> = {
  zero: '0',
  oh: '0',
  o: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
};
const TEENS: Record<string, string> = {
  ten: '10',
  eleven: '11',
  twelve: '12',
  thirteen: '13',
  fourteen: '14',
  fifteen: '15',
  sixteen: '16',
  seventeen: '17',
  eighteen: '18',
  nineteen: '19',
};
const TENS: Record<string, string> = {
  twenty: '2',
  thirty: '3',
  forty: '4',
  fifty: '5',
  sixty: '6',
  seventy: '7',
  eighty: '8',
  ninety: '9',
};
const REPEAT: Record<string, number> = { double: 2, triple: 3 };
const CUES = /\b(pin|cvv|cvc|cv2|code|security (?:number|code)|passcode|verification (?:number|code)|last (?:four|4)|zip(?: code)?)\b/i;
// Words that may sit between the digits of one number without ending it.
const GLUE = new Set(['-', ',', '.', '(', ')', 'and', 'dash', 'hyphen', 'space']);

interface Token {
  readonly start: number;
  readonly end: number;
  readonly digits: string; // '' for non-number tokens
  readonly glue: boolean;
  readonly word: string;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /[A-Za-z]+(?:'[a-z]+)?|\d+|[^\sA-Za-z\d]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const word = m[0].toLowerCase();
    const digits = /^\d+$/.test(word) ? word : (UNITS[word] ?? TEENS[word] ?? '');
    tokens.push({ start: m.index, end: m.index + m[0].length, digits, glue: GLUE.has(word), word });
  }
  // "twenty one" → 21, "forty" alone → 40; "double seven" → 77 (the repeat word is masked too).
  const merged: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    const next = tokens[i + 1];
    const tens = TENS[t.word];
    if (tens) {
      const unit =
        next && UNITS[next.word] && next.word !== 'oh' && next.word !== 'o' && next.word !== 'zero' ? UNITS[next.word] : undefined;
      merged.push({ ...t, end: unit ? (next as Token).end : t.end, digits: tens + (unit ?? '0') });
      if (unit) i++;
      continue;
    }
    const times = REPEAT[t.word];
    if (times && next?.digits.length === 1) {
      merged.push({ ...t, end: next.end, digits: next.digits.repeat(times) });
      i++;
      continue;
    }
    merged.push(t);
  }
  return merged;
}

interface Run {
  readonly tokens: Token[];
  readonly digits: string;
}

/** Maximal runs of number tokens, allowing glue (dashes, "and") between them. */
function numberRuns(tokens: Token[]): { run: Run; index: number }[] {
  const runs: { run: Run; index: number }[] = [];
  let current: Token[] = [];
  let startIndex = 0;
  const close = () => {
    const numbers = current.filter((t) => t.digits);
    if (numbers.length > 0) runs.push({ run: { tokens: numbers, digits: numbers.map((t) => t.digits).join('') }, index: startIndex });
    current = [];
  };
  tokens.forEach((t, i) => {
    if (t.digits) {
      if (current.length === 0) startIndex = i;
      current.push(t);
    } else if (!(t.glue && current.length > 0)) {
      close();
    }
  });
  close();
  return runs;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export interface RedactionResult {
  readonly text: string;
  readonly masked: number;
}

export function redact(text: string, rules: RedactionRules = DEFAULT_RULES): RedactionResult {
  const spans: [number, number][] = [];
  if (rules.emails) {
    for (const m of text.matchAll(/[A-Za-z0-9._%+-]+\s?(?:@|\bat\b)\s?[A-Za-z0-9-]+(?:\s?(?:\.|\bdot\b)\s?[A-Za-z]{2,})+/g)) {
      if (m[0].includes('@') || /\bdot\b/.test(m[0])) spans.push([m.index as number, (m.index as number) + m[0].length]);
    }
  }
  const tokens = tokenize(text);
  for (const { run, index } of numberRuns(tokens)) {
    const n = run.digits.length;
    const before = text.slice(Math.max(0, (tokens[index] as Token).start - 40), (tokens[index] as Token).start);
    const sensitive =
      (rules.cardNumbers && n >= 13 && n <= 19 && luhn(run.digits)) ||
      (rules.ssn && n === 9) ||
      (rules.longNumbers && n >= 7) ||
      (rules.cuedCodes && n >= 3 && n <= 8 && CUES.test(before));
    if (sensitive) for (const t of run.tokens) spans.push([t.start, t.end]);
  }
  if (spans.length === 0) return { text, masked: 0 };
  const chars = text.split(''); // UTF-16 units, like the match indices
  let masked = 0;
  for (const [start, end] of spans) {
    for (let i = start; i < end; i++) {
      if (chars[i] !== ' ' && chars[i] !== '#') {
        chars[i] = '#';
        masked++;
      }
    }
  }
  return { text: chars.join(''), masked };
}
