import type { RecognizerStream, SpeechEngine, StreamOptions, Utterance } from '../../../apps/asr/src/engine/speech-engine.port.js';

/**
 * A deterministic stand-in for the speech engine in consumer unit tests: "speech" is any
 * mu-law byte other than 0xff (silence); an utterance ends after 400 ms (3200 samples) of
 * silence; its text is `words[<first speech byte>]`. The real engine is exercised with real
 * audio in test/asr/engine/ and end to end in test/e2e/.
 */
const END_SILENCE = 3200;
const PAD = 800;

export function fakeEngine(words: Record<number, string> = {}): SpeechEngine & { streams: FakeStream[] } {
  const streams: FakeStream[] = [];
  return {
    name: 'fake',
    model: 'fake-1',
    languages: ['en-US'],
    wordTimings: 'proportional',
    streams,
    createStream(options?: StreamOptions) {
      const stream = new FakeStream(options?.startSample ?? 0, words);
      streams.push(stream);
      return stream;
    },
    ready: async () => {},
    stats: () => ({ workers: 1, running: 0, queued: 0, maxQueue: 64 }),
    close: async () => {},
  };
}

export class FakeStream implements RecognizerStream {
  samples: number;
  private speechStart: number | null = null;
  private speechByte = 0;
  private lastSpeech = 0;

  constructor(
    readonly startSample: number,
    private readonly words: Record<number, string>,
  ) {
    this.samples = startSample;
  }

  get pendingFromSample(): number {
    return this.speechStart === null ? this.samples : Math.max(this.startSample, this.speechStart - PAD);
  }

  async push(mulaw: Uint8Array): Promise<Utterance[]> {
    const out: Utterance[] = [];
    for (const byte of mulaw) {
      const at = this.samples++;
      if (byte !== 0xff) {
        if (this.speechStart === null) {
          this.speechStart = at;
          this.speechByte = byte;
        }
        this.lastSpeech = at;
      } else if (this.speechStart !== null && at - this.lastSpeech >= END_SILENCE) {
        out.push(this.utterance('silence'));
      }
    }
    await new Promise((r) => setImmediate(r)); // results arrive asynchronously, as with the real pool
    return out;
  }

  async flush(): Promise<Utterance[]> {
    return this.speechStart === null ? [] : [this.utterance('flush')];
  }

  private utterance(endpoint: Utterance['endpoint']): Utterance {
    const start = this.speechStart as number;
    const end = this.lastSpeech + 1;
    this.speechStart = null;
    return {
      startMs: Math.round(start / 8),
      endMs: Math.round(end / 8),
      startSample: start,
      endSample: end,
      text: this.words[this.speechByte] ?? `speech ${this.speechByte}`,
      endpoint,
    };
  }
}
