import t from 'tap';
import { byTurn, everyTurnEnded } from './turns.js';

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
