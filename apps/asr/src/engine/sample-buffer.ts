/**
 * The recent audio of one stream, addressed by absolute sample position (samples since the
 * first one pushed). `dropBefore` forgets what no utterance can need any more (it only moves an
 * index; the space is reclaimed on a later append), so memory stays bounded by the longest
 * utterance plus padding and each sample is copied O(1) times on average.
 */
export class SampleBuffer {
  private data = new Float32Array(16_000);
  /** Index in `data` of the oldest sample kept. */
  private head = 0;
  private length = 0;
  /** Absolute position of the oldest sample kept. */
  private origin: number;

  constructor(startSample = 0) {
    this.origin = startSample;
  }

  /** Absolute position one past the last sample. */
  get end(): number {
    return this.origin + this.length;
  }

  /** Absolute position of the oldest sample kept. */
  get start(): number {
    return this.origin;
  }

  append(samples: Float32Array): void {
    if (this.head + this.length + samples.length > this.data.length) {
      const needed = this.length + samples.length;
      if (needed > this.data.length / 2) {
        const grown = new Float32Array(Math.max(this.data.length * 2, needed * 2));
        grown.set(this.data.subarray(this.head, this.head + this.length));
        this.data = grown;
      } else {
        this.data.copyWithin(0, this.head, this.head + this.length);
      }
      this.head = 0;
    }
    this.data.set(samples, this.head + this.length);
    this.length += samples.length;
  }

  /** A view (not a copy) of [from, to); valid until the next append. */
  view(from: number, to: number): Float32Array {
    if (from < this.origin || to > this.end || from > to)
      throw new RangeError(`samples [${from}, ${to}) are not in the buffer [${this.origin}, ${this.end})`);
    return this.data.subarray(this.head + from - this.origin, this.head + to - this.origin);
  }

  /** A copy of [from, to). */
  copy(from: number, to: number): Float32Array {
    return this.view(from, to).slice();
  }

  dropBefore(position: number): void {
    const drop = Math.min(this.length, position - this.origin);
    if (drop <= 0) return;
    this.head += drop;
    this.length -= drop;
    this.origin += drop;
  }
}
