/**
 * Program text gathered one line at a time. Keeping hundreds of thousands of line strings (each a rope of
 * template pieces) alive until the end made the garbage collector copy them again and again (it was ~40% of a
 * 27B training-step compile); here recent lines are appended to a short-lived rope that is flattened every
 * ~CHUNK characters into one flat string (after which the line pieces are garbage), and the flat chunks are
 * joined once at the end. (Part 3 wrote the chunks into a UTF-8 byte buffer decoded at the end: in a CPU profile
 * Buffer.write + decode + copies were ~130 ms per 27B training-step compile; flattening + join here ~60–100 ms,
 * measured at a higher machine load — a modest gain, see docs/tpu.md.)
 */
const CHUNK = 1 << 15;

export class TextBuffer {
  private readonly chunks: string[] = [];
  /** Recent lines not yet flattened. */
  private pending = '';
  /** Lines written. */
  count = 0;

  /** Append `s` and a newline. */
  line(s: string): void {
    this.pending += s + '\n';
    this.count++;
    if (this.pending.length > CHUNK) this.flush();
  }

  private flush(): void {
    if (!this.pending) return;
    this.chunks.push(flat(this.pending));
    this.pending = '';
  }

  /** Everything written (each line newline-terminated). */
  toString(): string {
    this.flush();
    return this.chunks.join('');
  }
}

/**
 * Flatten a rope in place: V8 runs a regular expression on the flat form of its subject, replacing the rope's
 * pieces by one flat string. (Converting to a number, what the `flatstr` package does, no longer flattens on
 * Node 20: 300 chunks of 400 lines kept 26.7 MB alive instead of 2.9 MB.) Only a speed matter: the value is
 * unchanged either way.
 */
const NEVER = /\u0001/;
function flat(s: string): string {
  NEVER.test(s);
  return s;
}
