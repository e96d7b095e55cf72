import t from 'tap';
import { DEFAULT_ENDPOINTING, Endpointer, endpointOptions, type Segment } from '../../../apps/asr/src/engine/endpointer.js';
import { repetitionStart } from '../../../apps/asr/src/engine/moonshine.js';
import { proportionalWordTimes } from '../../../apps/asr/src/engine/recognizer-stream.js';
import { SampleBuffer } from '../../../apps/asr/src/engine/sample-buffer.js';
import { upsample2x } from '../../../apps/asr/src/engine/upsample.js';
import { normalizeWords, pooledWer, wordErrors } from '../../../scripts/test-audio/wer.js';

const W = 256; // samples per VAD window (32 ms at 8 kHz)

/** Runs probabilities (one per window) through an endpointer; returns the segments, flushed at the end. */
function segments(probs: readonly number[], override: Parameters<typeof endpointOptions>[1] = {}, flush = true): Segment[] {
  const e = new Endpointer(endpointOptions(DEFAULT_ENDPOINTING, override), W);
  const out: Segment[] = [];
  probs.forEach((p, i) => {
    const s = e.push(p, i * W);
    if (s) out.push(s);
  });
  const last = flush ? e.finish(probs.length * W) : undefined;
  if (last) out.push(last);
  return out;
}

const run = (value: number, windows: number) => Array.from({ length: windows }, () => value);

t.test('endpointer: speech between silences gives one segment at window boundaries', async (t) => {
  // 10 windows silence, 40 speech, 30 silence (960 ms > 400 ms min silence).
  const out = segments([...run(0.05, 10), ...run(0.9, 40), ...run(0.05, 30)]);
  t.same(out, [{ start: 10 * W, end: 50 * W, endpoint: 'silence' }]);
});

t.test('endpointer: a pause shorter than min silence does not split; a longer one does', async (t) => {
  const short = segments([...run(0.9, 30), ...run(0.1, 12), ...run(0.9, 30), ...run(0.1, 20)]); // 384 ms pause
  t.equal(short.length, 1, 'one segment across a 384 ms pause');
  t.equal(short[0]?.end, 72 * W);
  const long = segments([...run(0.9, 30), ...run(0.1, 17), ...run(0.9, 30), ...run(0.1, 20)]); // 544 ms pause
  t.same(
    long.map((s) => [s.start / W, s.end / W]),
    [
      [0, 30],
      [47, 77],
    ],
  );
  const custom = segments([...run(0.9, 30), ...run(0.1, 12), ...run(0.9, 30), ...run(0.1, 20)], { minSilenceMs: 300 });
  t.equal(custom.length, 2, 'min silence 300 ms splits the 384 ms pause');
});

t.test('endpointer: hysteresis between the thresholds keeps speech going', async (t) => {
  // 0.4 is below the start threshold (0.5) but above the end threshold (0.35).
  const out = segments([...run(0.9, 10), ...run(0.4, 40), ...run(0.1, 20)]);
  t.same(out, [{ start: 0, end: 50 * W, endpoint: 'silence' }]);
  t.same(segments(run(0.4, 50)), [], 'never above threshold: no speech');
});

t.test('endpointer: bursts shorter than min speech are dropped', async (t) => {
  t.same(segments([...run(0.1, 5), ...run(0.9, 5), ...run(0.1, 30)]), [], '160 ms burst < 250 ms');
  t.equal(segments([...run(0.1, 5), ...run(0.9, 9), ...run(0.1, 30)]).length, 1, '288 ms kept');
});

t.test('endpointer: finish() closes speech in progress at the end of the audio', async (t) => {
  t.same(segments([...run(0.1, 5), ...run(0.9, 20)]), [{ start: 5 * W, end: 25 * W, endpoint: 'flush' }]);
  t.same(segments([...run(0.9, 20), ...run(0.1, 5)]), [{ start: 0, end: 20 * W, endpoint: 'flush' }], 'ends where the silence began');
  t.same(segments(run(0.1, 20)), [], 'nothing in progress');
});

t.test('endpointer: speech longer than the maximum is cut at its quietest window', async (t) => {
  // 20 s max = 625 windows. A dip to 0.45 (above the end threshold) at window 500.
  const probs = run(0.95, 900);
  probs[500] = 0.45;
  const out = segments(probs, {}, true);
  t.equal(out[0]?.endpoint, 'max-length');
  t.equal(out[0]?.end, 500 * W, 'cut at the dip');
  t.equal(out[1]?.start, 500 * W, 'the next segment starts at the cut');
  t.equal(out[1]?.endpoint, 'flush');
  t.equal(out[1]?.end, 900 * W);
  t.ok(
    out.every((s) => s.end - s.start <= 20_000 * 8),
    'no segment longer than the maximum',
  );
});

t.test('endpointing options are validated', async (t) => {
  t.throws(() => endpointOptions(DEFAULT_ENDPOINTING, { threshold: 1.5 }), /threshold must be in/);
  t.throws(() => endpointOptions(DEFAULT_ENDPOINTING, { maxUtteranceMs: 100 }), /maxUtteranceMs/);
  t.equal(endpointOptions(DEFAULT_ENDPOINTING, { threshold: 0.6 }).negativeThreshold, 0.45, 'negative threshold follows');
});

t.test('word times are spread over the utterance in proportion to word length', async (t) => {
  const tokens = proportionalWordTimes('My card number', 1000, 2500);
  t.same(
    tokens.map((w) => w.text),
    ['My', 'card', 'number'],
  );
  t.equal(tokens[0]?.startMs, 1000);
  t.ok((tokens[2]?.endMs ?? 0) <= 2500 && (tokens[2]?.endMs ?? 0) > 2300);
  for (let i = 1; i < tokens.length; i++) t.ok((tokens[i]?.startMs ?? 0) >= (tokens[i - 1]?.endMs ?? 0), 'in order, no overlap');
  t.same(proportionalWordTimes('', 0, 100), []);
});

t.test('repetition guard: stops decoder loops but keeps real digit runs', async (t) => {
  const loop = [5, 6, ...Array.from({ length: 8 }, () => [10, 11, 12]).flat()];
  t.equal(repetitionStart(loop), 5, 'keeps one "10 11 12"');
  const card = [9, ...Array.from({ length: 4 }, () => [29871, 29946, 29896, 29896, 29896]).flat()]; // " 4111" x 4
  t.equal(repetitionStart(card), -1);
  t.equal(repetitionStart(Array.from({ length: 12 }, () => 29896)), -1, '12 ones are plausible');
  t.equal(repetitionStart(Array.from({ length: 30 }, () => 7)), 1, '30 of one token are not');
});

t.test('upsample2x keeps samples, length and a tone below 4 kHz', async (t) => {
  const n = 8000;
  const tone = new Float32Array(n).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 8000));
  const up = upsample2x(tone);
  t.equal(up.length, 2 * n);
  t.equal(up[200], tone[100], 'even samples are the input');
  let error = 0;
  for (let i = 100; i < 2 * n - 100; i++)
    error = Math.max(error, Math.abs((up[i] as number) - 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000)));
  t.ok(error < 0.01, `max error ${error.toFixed(5)} on a 1 kHz tone`);
});

t.test('SampleBuffer: absolute positions survive drops and growth', async (t) => {
  const b = new SampleBuffer();
  for (let i = 0; i < 50; i++) {
    b.append(Float32Array.from({ length: 1000 }, (_, k) => i * 1000 + k));
    b.dropBefore(i * 1000 - 2500);
  }
  t.equal(b.end, 50_000);
  t.equal(b.start, 46_500);
  t.same(Array.from(b.copy(49_998, 50_000)), [49_998, 49_999]);
  t.throws(() => b.view(46_000, 47_000), RangeError);
});

t.test('WER: normalisation spells digits and ignores case and punctuation', async (t) => {
  t.same(normalizeWords('My card is 4111-22, OK?'), ['my', 'card', 'is', 'four', 'one', 'one', 'one', 'two', 'two', 'ok']);
  t.same(wordErrors('four one one one', '4111.'), { errors: 0, words: 4, wer: 0 });
  t.equal(wordErrors('the cat sat on the mat', 'the cat sat on mat').errors, 1, 'one deletion');
  t.equal(wordErrors('a b c', 'a x c d').errors, 2, 'substitution + insertion');
  t.equal(
    pooledWer([
      ['a b', 'a b'],
      ['c d', 'c'],
    ]).wer,
    0.25,
  );
});

t.test('endpointing settings come from the config; bad values are refused by name', async (t) => {
  const { loadEarshotConfig } = await import('../../../apps/shared/src/config.js');
  const { endpointingFromConfig } = await import('../../../apps/asr/src/engine/endpointer.js');
  const config = loadEarshotConfig({
    env: { EARSHOT_ASR_MIN_SILENCE_MS: '450', EARSHOT_ASR_SILENCE_PAD_MS: '150', EARSHOT_ASR_SPECULATE_AFTER_MS: '100' },
  });
  t.same(endpointingFromConfig(config), { minSilenceMs: 450, silencePadMs: 150, speculateAfterMs: 100 });
  t.same(endpointingFromConfig(loadEarshotConfig({ env: {} })), {}, 'unset: the engine defaults');
  t.throws(() => loadEarshotConfig({ env: { EARSHOT_ASR_SILENCE_PAD_MS: '-1' } }), /EARSHOT_ASR_SILENCE_PAD_MS/);
  t.throws(() => loadEarshotConfig({ env: { EARSHOT_ASR_SPECULATE_AFTER_MS: 'soon' } }), /EARSHOT_ASR_SPECULATE_AFTER_MS/);
  t.match(
    endpointOptions(DEFAULT_ENDPOINTING),
    { minSilenceMs: 400, trailingPadMs: 0, silencePadMs: 200, speculateAfterMs: 150 },
    'the defaults measured in docs/benchmarks.md (changes 9 and 10)',
  );
  t.throws(() => endpointOptions(DEFAULT_ENDPOINTING, { silencePadMs: -5 }), /silencePadMs must be 0..10000, not -5/);
});
