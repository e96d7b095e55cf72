import t from 'tap';
import { DEFAULT_ENDPOINTING, endpointOptions } from '../../../apps/asr/src/engine/endpointer.js';
import type { Recognition } from '../../../apps/asr/src/engine/moonshine.js';
import type { PoolJob } from '../../../apps/asr/src/engine/recognizer-pool.js';
import { endsSentence, type StreamBackend, VadRecognizerStream } from '../../../apps/asr/src/engine/recognizer-stream.js';
import type { SileroVad } from '../../../apps/asr/src/engine/silero-vad.js';
import type { EndpointOptions, Utterance } from '../../../apps/asr/src/engine/speech-engine.port.js';
import { pcm16ToMulaw } from '../../../apps/shared/src/audio/mulaw.js';

// Speculative decoding in a pause (recognizer-stream.ts), with a scripted VAD (loud audio is
// speech) and a model stand-in whose decodes finish when the test says. The real model and
// pool are exercised in engine.int.test.ts (same output with and without speculation).

const MS = 8; // samples per ms
const LOUD = pcm16ToMulaw(new Int16Array([8000]))[0] as number;

/** mu-law audio from [kind, ms] parts (multiples of 32 ms keep the VAD grid easy to read). */
function audio(...parts: ['speech' | 'silence', number][]): Uint8Array {
  return Uint8Array.from(parts.flatMap(([kind, ms]) => Array.from({ length: ms * MS }, () => (kind === 'speech' ? LOUD : 0xff))));
}

const fakeVad = {
  async probability(_state: unknown, window: Float32Array): Promise<number> {
    return window.some((x) => Math.abs(x) > 0.1) ? 0.9 : 0.05;
  },
} as unknown as SileroVad;

interface Decode {
  readonly kind: 'final' | 'speculative';
  readonly audio: Float32Array;
  promoted: boolean;
  cancelled: boolean;
  resolve(text: string): void;
}

/** Decodes stay pending until `finishAll` (or `resolve`), as if the worker were busy. */
function fakeBackend(options: { speculate?: boolean; autoFinish?: boolean; text?: (kind: string, audio: Float32Array) => string } = {}) {
  const decodes: Decode[] = [];
  const start = (kind: Decode['kind'], audio: Float32Array) => {
    let resolve!: (r: Recognition) => void;
    const result = new Promise<Recognition>((r) => {
      resolve = r;
    });
    const decode: Decode = {
      kind,
      audio,
      promoted: false,
      cancelled: false,
      resolve: (text) => resolve({ text, tokenIds: [], stop: 'end' }),
    };
    decodes.push(decode);
    if (options.autoFinish !== false) decode.resolve(options.text ? options.text(kind, audio) : `${kind} ${audio.length}`);
    return { decode, result };
  };
  const backend: StreamBackend = {
    vad: async () => fakeVad,
    recognize: async (audio) => start('final', audio).result,
    speculate: (audio): PoolJob | undefined => {
      if (options.speculate === false) return undefined;
      const { decode, result } = start('speculative', audio);
      return {
        result,
        promote: () => {
          decode.promoted = true;
        },
        cancel: () => {
          decode.cancelled = true;
        },
      };
    },
  };
  return { backend, decodes };
}

// The tests below were written for real trailing audio and no silence padding (the defaults
// before the fifth session); the defaults of now have tests of their own further down.
const OPTIONS = endpointOptions(DEFAULT_ENDPOINTING, {
  minSilenceMs: 500,
  speechPadMs: 500,
  trailingPadMs: 200,
  silencePadMs: 0,
  speculateAfterMs: 0,
});

async function run(backend: StreamBackend, mulaw: Uint8Array, options: EndpointOptions = OPTIONS): Promise<Utterance[]> {
  const stream = new VadRecognizerStream(backend, options, false);
  const pushes: Promise<Utterance[]>[] = [];
  for (let at = 0; at < mulaw.length; at += 160) pushes.push(stream.push(mulaw.subarray(at, at + 160)));
  pushes.push(stream.flush());
  return (await Promise.all(pushes)).flat();
}

t.test('a pause that becomes the endpoint: the speculative decode is the utterance, no second decode', async (t) => {
  const call = audio(['silence', 320], ['speech', 1280], ['silence', 800]);
  const spec = fakeBackend();
  const got = await run(spec.backend, call);
  t.same(
    spec.decodes.map((d) => [d.kind, d.promoted, d.cancelled]),
    [['speculative', true, false]],
    'one decode, started in the pause and confirmed',
  );
  t.equal(got.length, 1);
  t.match(got[0], { startSample: 320 * MS, endSample: 1600 * MS, endpoint: 'silence', text: 'speculative 14400' });

  // Without speculation the same utterance comes from a decode of the very same audio.
  const plain = fakeBackend({ speculate: false });
  const reference = await run(plain.backend, call);
  t.same(
    plain.decodes.map((d) => d.kind),
    ['final'],
  );
  t.same(
    Array.from(spec.decodes[0]?.audio ?? []),
    Array.from(plain.decodes[0]?.audio ?? []),
    'identical audio: [start - 500 ms, end + 200 ms]',
  );
  t.same(
    reference.map((u) => [u.startSample, u.endSample, u.endpoint]),
    got.map((u) => [u.startSample, u.endSample, u.endpoint]),
  );
});

t.test('a pause shorter than the minimum silence: the speculation is cancelled, never published', async (t) => {
  const call = audio(['speech', 640], ['silence', 320], ['speech', 640], ['silence', 800]);
  const { backend, decodes } = fakeBackend();
  const got = await run(backend, call);
  t.same(
    decodes.map((d) => [d.kind, d.promoted, d.cancelled]),
    [
      ['speculative', false, true],
      ['speculative', true, false],
    ],
  );
  t.equal(got.length, 1, 'one utterance across the short pause');
  t.match(got[0], { startSample: 0, endSample: 1600 * MS, endpoint: 'silence' });
  t.equal(got[0]?.text, `speculative ${(1600 + 200) * MS}`, 'the text of the confirmed decode, not of the first pause');
});

t.test('a speculative text ready early is held until the pause reaches the endpoint', async (t) => {
  const { backend, decodes } = fakeBackend({ autoFinish: false });
  const stream = new VadRecognizerStream(backend, OPTIONS, false);
  const early = stream.push(audio(['speech', 960], ['silence', 352])); // past the 200 ms trailing pad, short of 500 ms
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 10));
  t.equal(decodes.length, 1, 'speculation started');
  decodes[0]?.resolve('ready early');
  t.same(await early, [], 'nothing published: the endpoint is not confirmed');
  t.ok(stream.pendingFromSample <= 0, 'the speech in progress is still held for a replay');
  const confirmed = await stream.push(audio(['silence', 320]));
  t.same(
    confirmed.map((u) => [u.text, u.endpoint]),
    [['ready early', 'silence']],
    'published with the push that confirmed the endpoint',
  );
});

t.test('a speculation already running when speech resumes: its text is ignored', async (t) => {
  const { backend, decodes } = fakeBackend({ autoFinish: false });
  const stream = new VadRecognizerStream(backend, OPTIONS, false);
  const pushes = [stream.push(audio(['speech', 640], ['silence', 320]))];
  await pushes[0];
  decodes[0]?.resolve('stale'); // as if a worker had already taken it: cancel() cannot stop it
  pushes.push(stream.push(audio(['speech', 640], ['silence', 800])));
  await new Promise((r) => setTimeout(r, 10));
  t.equal(decodes[0]?.cancelled, true, 'cancelled when speech resumed');
  for (const d of decodes.slice(1)) d.resolve('fresh');
  const got = (await Promise.all(pushes)).flat();
  t.same(
    got.map((u) => u.text),
    ['fresh'],
  );
});

t.test('flush in a pause uses the speculation; a cut mid-speech decodes afresh', async (t) => {
  const paused = fakeBackend();
  const inPause = await run(paused.backend, audio(['speech', 960], ['silence', 320]));
  t.same(
    paused.decodes.map((d) => [d.kind, d.promoted]),
    [['speculative', true]],
  );
  t.match(inPause, [{ endpoint: 'flush', endSample: 960 * MS }]);

  const talking = fakeBackend();
  const midSpeech = await run(talking.backend, audio(['speech', 960]));
  t.same(
    talking.decodes.map((d) => d.kind),
    ['final'],
  );
  t.match(midSpeech, [{ endpoint: 'flush', endSample: 960 * MS }]);
});

t.test('no speculation when the trailing padding is not shorter than the minimum silence', async (t) => {
  const { backend, decodes } = fakeBackend();
  const options = endpointOptions(DEFAULT_ENDPOINTING, { minSilenceMs: 500, trailingPadMs: 500 });
  const got = await run(backend, audio(['speech', 960], ['silence', 800]), options);
  t.same(
    decodes.map((d) => d.kind),
    ['final'],
  );
  t.equal(got.length, 1);
});

t.test('silence padding: the model gets the speech and zeros after it, and the speculation waits for speculateAfterMs', async (t) => {
  const options = endpointOptions(DEFAULT_ENDPOINTING, { minSilenceMs: 400, trailingPadMs: 0, silencePadMs: 200, speculateAfterMs: 160 });
  // A pause of 128 ms (< 160) starts no speculation; the one of 192 ms does, and is cancelled
  // when speech resumes; the final pause is confirmed and its speculation published.
  const call = audio(
    ['silence', 320],
    ['speech', 640],
    ['silence', 128],
    ['speech', 640],
    ['silence', 192],
    ['speech', 640],
    ['silence', 800],
  );
  const { backend, decodes } = fakeBackend();
  const got = await run(backend, call, options);
  t.same(
    decodes.map((d) => [d.kind, d.promoted, d.cancelled]),
    [
      ['speculative', false, true],
      ['speculative', true, false],
    ],
    'no decode for the 128 ms pause; one cancelled for the 192 ms pause; one confirmed',
  );
  t.equal(got.length, 1, 'pauses under 400 ms do not split');
  const speechEnd = (320 + 640 + 128 + 640 + 192 + 640) * MS;
  t.match(got[0], { startSample: 320 * MS, endSample: speechEnd, endpoint: 'silence' });
  const input = decodes[1]?.audio ?? new Float32Array();
  t.equal(input.length, speechEnd - 0 + 200 * MS, 'from 500 ms before the speech (the track start here) to its end, plus 200 ms');
  t.ok(
    input.subarray(input.length - 200 * MS).every((x) => x === 0),
    'the last 200 ms are digital silence, not audio of the pause',
  );
  t.ok(
    input.subarray(speechEnd - 640 * MS, speechEnd).some((x) => x !== 0),
    'the speech before them is the real audio',
  );

  // The defaults: 400 ms of silence ends it, the model gets 200 ms of silence after the speech.
  const defaults = fakeBackend();
  const byDefault = await run(
    defaults.backend,
    audio(['speech', 960], ['silence', 352], ['speech', 640], ['silence', 416]),
    endpointOptions(DEFAULT_ENDPOINTING),
  );
  t.match(byDefault, [{ endpoint: 'silence', endSample: (960 + 352 + 640) * MS }], 'a 352 ms pause does not end it; 416 ms does');
  t.equal(byDefault.length, 1);
  t.same(
    defaults.decodes.map((d) => [d.kind, d.promoted, d.cancelled]),
    [
      ['speculative', false, true],
      ['speculative', true, false],
    ],
    'a speculation in each pause that reached 150 ms; the first thrown away',
  );
  t.equal(defaults.decodes[1]?.audio.length, (960 + 352 + 640 + 200) * MS);
});

t.test('the endpointer names the pause candidate only while the pause lasts', async (t) => {
  const { Endpointer } = await import('../../../apps/asr/src/engine/endpointer.js');
  const e = new Endpointer(OPTIONS, 256);
  let at = 0;
  const push = (p: number) => {
    const s = e.push(p, at);
    at += 256;
    return s;
  };
  for (let i = 0; i < 20; i++) push(0.9);
  t.equal(e.pause, undefined, 'speaking: no candidate');
  push(0.1);
  t.same(e.pause, { start: 0, end: 20 * 256, endpoint: 'silence' });
  push(0.4);
  t.same(e.pause, { start: 0, end: 20 * 256, endpoint: 'silence' }, 'between the thresholds the pause goes on');
  push(0.9);
  t.equal(e.pause, undefined, 'speech resumed');
  const short = new Endpointer(OPTIONS, 256);
  short.push(0.9, 0);
  short.push(0.1, 256);
  t.equal(short.pause, undefined, 'a candidate shorter than minSpeechMs would be dropped: none');
});

t.test('a decode refused (full model queue) mid-push fails that push only, and never as an unhandled rejection', async (t) => {
  let refuse = true;
  const slowVad = {
    // A macrotask per window, as onnxruntime's async run: a rejection left unhandled across it would end the process.
    probability: (state: unknown, window: Float32Array) =>
      new Promise<number>((r) => setImmediate(() => fakeVad.probability(state as never, window).then(r))),
  } as unknown as SileroVad;
  const backend: StreamBackend = {
    vad: async () => slowVad,
    recognize: async (audio) => {
      if (refuse) throw new Error('speech recognition overloaded: 64 utterances waiting');
      return { text: `final ${audio.length}`, tokenIds: [], stop: 'end' };
    },
    speculate: () => undefined,
  };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const stream = new VadRecognizerStream(backend, OPTIONS, false);
  // The endpoint falls early in this push; many VAD windows follow it.
  await t.rejects(stream.push(audio(['speech', 640], ['silence', 2000])), /overloaded/);
  await new Promise((r) => setTimeout(r, 20));
  t.same(unhandled, [], 'no unhandled rejection');

  // Refused while an earlier utterance of the stream still waits for its text (its push not yet delivered).
  refuse = false;
  let release!: () => void;
  const slow: StreamBackend = {
    ...backend,
    recognize: async (audio) => {
      if (refuse) throw new Error('speech recognition overloaded: 64 utterances waiting');
      await new Promise<void>((r) => {
        release = r;
      });
      refuse = true; // the next decode is refused
      return { text: `final ${audio.length}`, tokenIds: [], stop: 'end' };
    },
  };
  const queued = new VadRecognizerStream(slow, OPTIONS, false);
  const first = queued.push(audio(['speech', 640], ['silence', 800]));
  await new Promise((r) => setTimeout(r, 50));
  refuse = true;
  const second = queued.push(audio(['speech', 640], ['silence', 800]));
  second.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  t.same(unhandled, [], 'no unhandled rejection while the earlier push waits');
  release();
  t.equal((await first).length, 1, 'the earlier utterance is delivered');
  await t.rejects(second, /overloaded/, 'the refused one fails its own push');
  refuse = false;
  const next = await stream.push(audio(['speech', 640], ['silence', 800]));
  t.equal(next.length, 1, 'the stream goes on with the next utterance');
});

t.test('a confirmed utterance refused by a full model queue is offered again until taken, never lost', async (t) => {
  const call = audio(['silence', 320], ['speech', 1280], ['silence', 800], ['speech', 640], ['silence', 800]);
  const plain = fakeBackend({ speculate: false });
  let refusals = 0;
  const busy: StreamBackend = {
    ...plain.backend,
    recognize: (samples, maxTokens) => {
      if (refusals < 5) {
        refusals++;
        return Promise.reject(
          Object.assign(new Error('speech recognition overloaded: 64 utterances waiting'), { code: 'EARSHOT_ASR_OVERLOADED' }),
        );
      }
      return plain.backend.recognize(samples, maxTokens);
    },
  };
  const got = await run(busy, call);
  t.equal(refusals, 5, 'the pool refused five times');
  t.equal(got.length, 2, 'both utterances still came out');
  t.ok(
    got.every((u) => u.text.startsWith('final')),
    'from decodes of their audio',
  );

  // Any other failure is not retried: it reaches the caller.
  const broken: StreamBackend = { ...plain.backend, recognize: () => Promise.reject(new Error('speech engine is closed')) };
  await t.rejects(run(broken, call), /speech engine is closed/);
});

// Sentence-end endpointing: a pause of `sentenceEndSilenceMs` ends an utterance whose text ends
// a sentence; the stream reads no further audio until it knows, so speed never changes the split.
const SENTENCE_END = endpointOptions(DEFAULT_ENDPOINTING, {
  minSilenceMs: 500,
  speechPadMs: 500,
  trailingPadMs: 200,
  silencePadMs: 0,
  speculateAfterMs: 0,
  sentenceEndSilenceMs: 300,
});

t.test('a pause after a sentence ends the utterance at the sentence-end silence, with the speculative decode', async (t) => {
  // 350 ms of pause, then speech again: only the sentence end can split here (500 ms would merge).
  const call = audio(['speech', 960], ['silence', 352], ['speech', 640], ['silence', 800]);
  const punctuated = fakeBackend({ text: (kind, a) => `${kind} ${a.length}.` });
  const split = await run(punctuated.backend, call, SENTENCE_END);
  t.same(
    split.map((u) => [u.startSample, u.endSample, u.endpoint]),
    [
      [0, 960 * MS, 'sentence-end'],
      [(960 + 352) * MS, (960 + 352 + 640) * MS, 'sentence-end'],
    ],
  );
  t.same(
    punctuated.decodes.map((d) => [d.kind, d.promoted, d.cancelled]),
    [
      ['speculative', true, false],
      ['speculative', true, false],
    ],
    'the speculation started at 200 ms is the first utterance: no second decode',
  );

  const plain = fakeBackend({ text: (kind, a) => `${kind} ${a.length}` }); // no sentence end: as before
  const merged = await run(plain.backend, call, SENTENCE_END);
  t.same(
    merged.map((u) => [u.startSample, u.endSample, u.endpoint]),
    [[0, (960 + 352 + 640) * MS, 'silence']],
    'without a sentence end the short pause does not split',
  );
});

t.test('the split does not depend on how fast the model is: the stream waits for the text', async (t) => {
  const call = audio(['speech', 960], ['silence', 352], ['speech', 640], ['silence', 800]);
  const slow = fakeBackend({ autoFinish: false });
  const stream = new VadRecognizerStream(slow.backend, SENTENCE_END, false);
  const pushes: Promise<Utterance[]>[] = [];
  for (let at = 0; at < call.length; at += 160) pushes.push(stream.push(call.subarray(at, at + 160)));
  pushes.push(stream.flush());
  await new Promise((r) => setTimeout(r, 20));
  t.equal(slow.decodes.length, 1, 'one decode, waiting; the speech after the pause is not read yet');
  t.ok(stream.pendingFromSample <= 0, 'the utterance is still held for a replay');
  slow.decodes[0]?.resolve('Slow but final.');
  await new Promise((r) => setTimeout(r, 20));
  for (const d of slow.decodes.slice(1)) d.resolve('And more.');
  const got = (await Promise.all(pushes)).flat();
  t.same(
    got.map((u) => [u.startSample, u.endpoint, u.text]),
    [
      [0, 'sentence-end', 'Slow but final.'],
      [(960 + 352) * MS, 'sentence-end', 'And more.'],
    ],
    'the same two utterances as with a fast model',
  );
});

t.test('with the speculation refused (model queue full), the sentence end is decided by a decode of the same audio', async (t) => {
  const call = audio(['speech', 960], ['silence', 352], ['speech', 640], ['silence', 800]);
  const { backend, decodes } = fakeBackend({ speculate: false, text: () => 'Done.' });
  const got = await run(backend, call, SENTENCE_END);
  t.same(
    got.map((u) => [u.startSample, u.endpoint]),
    [
      [0, 'sentence-end'],
      [(960 + 352) * MS, 'sentence-end'],
    ],
  );
  t.equal(decodes[0]?.audio.length, (960 + 200) * MS, 'the audio the utterance gets: start (no padding at 0) to end + 200 ms');
  t.equal(decodes.length, 2, 'one decode per utterance');
});

t.test('endsSentence: . ? ! end a sentence (quotes aside); a comma or an ellipsis does not', async (t) => {
  for (const text of ['Hello.', 'Is that all?', 'Great!', 'He said "yes."', 'Done. ']) t.ok(endsSentence(text), text);
  for (const text of ['hello', 'my card number is,', 'well...', '', '4111']) t.notOk(endsSentence(text), text);
});

t.test('sentence-end silence must lie between the trailing padding and the minimum silence', async (t) => {
  t.throws(() => endpointOptions(DEFAULT_ENDPOINTING, { trailingPadMs: 200, sentenceEndSilenceMs: 100 }), /sentenceEndSilenceMs/);
  t.throws(() => endpointOptions(DEFAULT_ENDPOINTING, { sentenceEndSilenceMs: 500 }), /sentenceEndSilenceMs/);
  t.equal(endpointOptions(DEFAULT_ENDPOINTING, { sentenceEndSilenceMs: 300 }).sentenceEndSilenceMs, 300);
});
