/**
 * G.711 mu-law, the encoding of Twilio Media Streams (8 kHz, 8 bits, mono). Decoding goes
 * through a 256-entry table built once: it runs for every audio byte of every call.
 */
const BIAS = 0x84;
const CLIP = 32635;

const DECODE_TABLE = (() => {
  const table = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const sign = u & 0x80;
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    table[i] = sign ? -magnitude : magnitude;
  }
  return table;
})();

export function mulawDecodeSample(byte: number): number {
  return DECODE_TABLE[byte & 0xff] as number;
}

/** mu-law bytes → 16-bit PCM. */
export function mulawToPcm16(input: Uint8Array, output: Int16Array = new Int16Array(input.length)): Int16Array {
  for (let i = 0; i < input.length; i++) output[i] = DECODE_TABLE[input[i] as number] as number;
  return output;
}

/** mu-law bytes → float samples in [-1, 1) (what speech models take). */
export function mulawToFloat32(input: Uint8Array, output: Float32Array = new Float32Array(input.length)): Float32Array {
  for (let i = 0; i < input.length; i++) output[i] = (DECODE_TABLE[input[i] as number] as number) / 32768;
  return output;
}

export function mulawEncodeSample(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** 16-bit PCM → mu-law bytes. */
export function pcm16ToMulaw(input: Int16Array): Uint8Array {
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = mulawEncodeSample(input[i] as number);
  return out;
}
