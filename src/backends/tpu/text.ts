/**
 * Program text gathered one line at a time. Keeping hundreds of thousands of line strings (each a rope of
 * template pieces) alive until the end made the garbage collector copy them again and again (it was ~40% of a
 * 27B training-step compile); here recent lines are appended to a short-lived rope that is flattened every
 * ~CHUNK characters into one flat string (after which the line pieces are garbage), and the flat chunks are
 * joined once at the end. (Part 3 wrote the chunks into a UTF-8 byte buffer decoded at the end; encoding and
 * decoding 28 MB cost ~110 ms of a 27B training-step compile, the flat chunks ~20 ms.)
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
 * Flatten a rope in place: V8 converts a string to a number on its flat form, replacing the rope's pieces by one
 * flat string (what the `flatstr` package does). Only a speed matter: the value is unchanged either way.
 */
function flat(s: string): string {
  // eslint-disable-next-line @typescript-eslint/no-unused-expressions
  (s as unknown as number) | 0;
  return s;
}
