/**
 * Offline resampling with a Blackman-windowed sinc (16 zero crossings each side), cut off
 * just below the lower Nyquist frequency so downsampling does not alias. Good enough for
 * speech recognition and test audio; O(samples x 32). Streaming 8 -> 16 kHz for the model has
 * its own stateful path (issue 4).
 */
const HALF_TAPS = 16;

export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return input.slice();
  const ratio = toRate / fromRate;
  const cutoff = Math.min(1, ratio) * 0.95;
  const outLength = Math.floor(input.length * ratio);
  const out = new Float32Array(outLength);
  const step = 1 / ratio;
  const halfWidth = HALF_TAPS / cutoff;
  for (let i = 0; i < outLength; i++) {
    const center = i * step;
    const first = Math.max(0, Math.ceil(center - halfWidth));
    const last = Math.min(input.length - 1, Math.floor(center + halfWidth));
    let sum = 0;
    let weight = 0;
    for (let k = first; k <= last; k++) {
      const x = (k - center) * cutoff;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = 0.42 + 0.5 * Math.cos((Math.PI * (k - center)) / halfWidth) + 0.08 * Math.cos((2 * Math.PI * (k - center)) / halfWidth);
      const h = sinc * w;
      sum += (input[k] as number) * h;
      weight += h;
    }
    out[i] = weight === 0 ? 0 : sum / weight;
  }
  return out;
}

export function floatToPcm16(input: Float32Array): Int16Array {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round((input[i] as number) * 32768)));
  return out;
}
