/**
 * Program text written straight into a growing byte buffer, one line at a time. Keeping hundreds of thousands
 * of line strings (each a rope of template pieces) alive until the end made the garbage collector copy them
 * again and again (it was ~40% of a 27B training-step compile); here each line dies young and the text is
 * decoded once.
 */
export class TextBuffer {
  private buf: Buffer = Buffer.allocUnsafe(1 << 16);
  private len = 0;
  /** Recent lines not yet in the buffer (a short-lived rope, flushed every ~32k characters). */
  private pending = '';
  /** Lines written. */
  count = 0;

  /** Append `s` and a newline. */
  line(s: string): void {
    this.pending += s + '\n';
    this.count++;
    if (this.pending.length > 32768) this.flush();
  }

  private flush(): void {
    const s = this.pending;
    this.pending = '';
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const need = this.len + 3 * s.length;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, 2 * this.buf.length));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.len += this.buf.write(s, this.len);
  }

  /** Everything written (each line newline-terminated). */
  toString(): string {
    this.flush();
    return this.buf.toString('utf8', 0, this.len);
  }
}
