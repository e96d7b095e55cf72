import t from 'tap';
import { byTurn, everyTurnEnded, lostAndDuplicated } from './turns.js';

const turns = [
  { startMs: 1000, endMs: 3000, text: 'Great. How long will that take?' },
  { startMs: 5000, endMs: 6000, text: 'No, that is all.' },
];
const u = (startMs: number, endMs: number, text: string | null) => ({ startMs, endMs, text });

t.test('a turn split at a pause is put back together, in time order', async (t) => {
  const got = byTurn([u(5010, 6050, 'No, that is all.'), u(1500, 3050, 'How long will that take?'), u(1020, 1300, 'Great.')], turns);
  t.same(
    got.turns.map((r) => [r.parts.length, r.startMs, r.endMs, r.text]),
    [
      [2, 1020, 3050, 'Great. How long will that take?'],
      [1, 5010, 6050, 'No, that is all.'],
    ],
  );
  t.same([got.stray, got.overlapping], [[], []]);
  t.ok(everyTurnEnded([u(1020, 1300, 'Great.'), u(1500, 3050, 'How'), u(5010, 6050, 'No')], turns));
  t.notOk(everyTurnEnded([u(1020, 1300, 'Great.'), u(5010, 6050, 'No')], turns), 'the rest of the first turn is missing');
});

t.test('lost turns, utterances outside every turn and overlapping ones are reported', async (t) => {
  const twice = u(1020, 3050, 'Great. How long will that take?');
  const got = byTurn([twice, { ...twice, text: 'again' }, u(8000, 8500, 'invented'), u(1100, 1200, null)], turns);
  t.same(got.turns[1]?.parts, [], 'the second turn is lost');
  t.equal(got.turns[1]?.startMs, undefined);
  t.same(
    got.stray.map((x) => x.text),
    ['invented'],
  );
  t.same(
    got.overlapping.map((x) => x.text),
    ['again', null],
    'both later copies overlap the first',
  );
  t.equal(got.turns[0]?.text, 'Great. How long will that take? again ', 'a null text (redacted) joins as empty');
});

t.test('lost and duplicated, by turn: a missing first or last part is a loss, an overlap or a stray a duplicate', async (t) => {
  const [great, howLong, noThanks] = [
    u(1020, 1300, 'Great.'),
    u(1500, 3050, 'How long will that take?'),
    u(5010, 6050, 'No, that is all.'),
  ];
  const whole = [great, howLong, noThanks];
  t.same(lostAndDuplicated(whole, turns), { lost: 0, duplicated: 0 });
  t.same(
    lostAndDuplicated([u(1020, 3050, 'Great. How long will that take?'), noThanks], turns),
    { lost: 0, duplicated: 0 },
    'one utterance or two',
  );
  t.same(lostAndDuplicated(whole.slice(1), turns), { lost: 1, duplicated: 0 }, 'the first part of a turn missing');
  t.same(lostAndDuplicated([great, noThanks], turns), { lost: 1, duplicated: 0 }, 'the last part missing');
  t.same(lostAndDuplicated(whole.slice(0, 2), turns), { lost: 1, duplicated: 0 }, 'a whole turn missing');
  t.same(
    lostAndDuplicated([...whole, u(1510, 3040, 'How long will that take?'), u(9000, 9500, '?')], turns),
    { lost: 0, duplicated: 2 },
    'a replay at a moved start, and an utterance outside every turn',
  );
});
