import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mulawEncodeSample } from '../../apps/shared/src/audio/mulaw.js';
import { readWav } from '../../apps/shared/src/audio/wav.js';
import type { CorpusTrack, CorpusUtterance } from './corpus.js';

/**
 * Noisy versions of corpus tracks for accuracy measurements: Gaussian white noise added to the
 * telephone-band PCM (`track.pcm`, before mu-law) at a given SNR, then mu-law encoded as a
 * live call would be. Deterministic: the noise of a track depends only on `seed` and the
 * track's file name.
 */

/** Signal power over the speech spans (the manifest's utterances), so the SNR is about speech, not silence. */
export function speechPower(samples: Float32Array, utterances: readonly CorpusUtterance[], sampleRate = 8000): number {
  let energy = 0;
  let count = 0;
  for (const u of utterances) {
    const from = Math.max(0, Math.floor((u.startMs * sampleRate) / 1000));
    const to = Math.min(samples.length, Math.ceil((u.endMs * sampleRate) / 1000));
    for (let i = from; i < to; i++) energy += (samples[i] as number) ** 2;
    count += Math.max(0, to - from);
  }
  return count === 0 ? 0 : energy / count;
}

/** `samples` + white Gaussian noise whose power is the speech power minus `snrDb`; clipped to [-1, 1]. */
export function addWhiteNoise(
  samples: Float32Array,
  snrDb: number,
  seed: number,
  utterances: readonly CorpusUtterance[],
  sampleRate = 8000,
): Float32Array {
  const rms = Math.sqrt(speechPower(samples, utterances, sampleRate) / 10 ** (snrDb / 10));
  const gaussian = normal(seed);
  return Float32Array.from(samples, (x) => Math.max(-1, Math.min(1, x + rms * gaussian())));
}

export function floatToMulaw(samples: Float32Array): Uint8Array {
  return Uint8Array.from(samples, (x) => mulawEncodeSample(x * 32768));
}

/** The track's mu-law with white noise at `snrDb` added before encoding. */
export function noisyMulaw(track: CorpusTrack, snrDb: number, seed = 1): Uint8Array {
  const pcm = readWav(readFileSync(track.pcm), track.pcm).channels[0] as Float32Array;
  const trackSeed = createHash('sha256')
    .update(`${seed}:${track.pcm.split('/').pop()}`)
    .digest()
    .readUInt32LE(0);
  return floatToMulaw(addWhiteNoise(pcm, snrDb, trackSeed, track.utterances));
}

/** Standard normal samples from a seeded xorshift32 (Box-Muller). */
function normal(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 1) / 4294967297; // (0, 1)
  };
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}
