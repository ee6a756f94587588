/**
 * Diagnostics: errors a user can act on. Each carries a location (file, 1-based line and column, the
 * number of columns to underline), the text of the source line, and optional notes (e.g. the line inside a
 * prelude block where a shape error surfaced) — except option diagnostics (a bad `variant`, `hparams` or
 * `dims` entry given to the compiler), which name the option instead. The printed form is
 *
 *     gemma2.model:28:17: error: unknown hyperparameter 'head_dimm' in variant 27b (did you mean 'head_dim'?)
 *         head_dimm = 128
 *         ^~~~~~~~~
 */
import type { Span } from './ast';

export type Severity = 'error' | 'warning' | 'note';

/** What kind of problem a diagnostic reports; stable names for tools and tests. */
export type DiagnosticCode =
  | 'syntax' // lexing and parsing
  | 'unknown-name' // a value name that is not defined
  | 'unknown-hparam' // a variant, config mapping or option naming a hyperparameter that does not exist
  | 'unknown-block' // a call of something that is neither a block nor a primitive
  | 'unknown-variant'
  | 'unknown-dim'
  | 'unused-dim'
  | 'arity' // too many / too few arguments
  | 'unknown-argument' // a named argument the callee does not have
  | 'shape' // an op's type rule rejected its inputs (ShapeError)
  | 'type' // a value of the wrong kind (a tensor where a number is needed, ...)
  | 'cycle' // cyclic hyperparameter definitions
  | 'recursion' // blocks calling themselves, directly or not
  | 'duplicate' // something declared twice
  | 'config' // a config.json value that cannot be used
  | 'missing' // a required part of the file is missing (no forward, no return)
  | 'limit' // the model is too big to build (loop bounds, node count)
  | 'internal'; // a bug in the compiler, reported instead of thrown

export interface DiagnosticNote {
  readonly message: string;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly length: number;
  readonly lineText: string;
}

interface DiagnosticCommon {
  readonly severity: Severity;
  readonly code: DiagnosticCode;
  readonly message: string;
  readonly notes: readonly DiagnosticNote[];
}

/** A problem at a place in a source file (the model file or the prelude). */
export interface SourceDiagnostic extends DiagnosticCommon {
  readonly option?: undefined;
  readonly key?: undefined;
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  /** Columns to underline (at least 1, never past the end of the line). */
  readonly length: number;
  /** The source line the location is on. */
  readonly lineText: string;
}

/** The compile option (a key of `CompileOptions`) an option diagnostic is about. */
export type DiagnosticOption = 'variant' | 'hparams' | 'dims';

/**
 * A problem with a compile option rather than with the file (an unknown `hparams` name, an unknown
 * `variant`): it has no source location — pointing into the model file would underline an unrelated line.
 */
export interface OptionDiagnostic extends DiagnosticCommon {
  readonly option: DiagnosticOption;
  /** The entry of the option at fault: the hyperparameter or dim name, or the variant asked for. */
  readonly key: string;
  readonly file?: undefined;
  readonly line?: undefined;
  readonly col?: undefined;
  readonly length?: undefined;
  readonly lineText?: undefined;
}

/** Either located in a source file, or about a compile option (`option` set, no location). */
export type Diagnostic = SourceDiagnostic | OptionDiagnostic;

export function isOptionDiagnostic(d: Diagnostic): d is OptionDiagnostic {
  return d.option !== undefined;
}

/** Line starts of a text, to turn offsets into lines and columns. */
export class SourceText {
  private readonly starts: number[] = [0];
  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }

  get lineCount(): number {
    return this.starts.length;
  }

  /** The text of a 1-based line, without its newline (and without a trailing `\r`). */
  lineText(line: number): string {
    if (line < 1 || line > this.starts.length) return '';
    const s = this.starts[line - 1];
    const e = line < this.starts.length ? this.starts[line] - 1 : this.text.length;
    let t = this.text.slice(s, e);
    if (t.endsWith('\r')) t = t.slice(0, -1);
    return t;
  }

  /** 1-based line and column of an offset (clamped into the text). */
  position(offset: number): { line: number; col: number } {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - this.starts[lo] + 1 };
  }

  /** A span from offsets [start, end). */
  span(start: number, end: number): Span {
    const a = this.position(start);
    const b = this.position(Math.max(start, end - 1));
    return { file: this.file, start, end: Math.max(start, end), line: a.line, col: a.col, endLine: b.line, endCol: b.col };
  }

  /** Where to point when the problem is "the file ended": just after the last non-blank character. */
  endSpan(): Span {
    let i = this.text.length;
    while (i > 0 && /\s/.test(this.text[i - 1])) i--;
    // Skip back over a trailing comment so the caret lands after code when possible.
    return this.span(i, i);
  }

  /** Location fields of a diagnostic for a span: the underline stops at the end of the first line. */
  locate(span: Span): { file: string; line: number; col: number; length: number; lineText: string } {
    const line = Math.max(1, Math.min(span.line, this.lineCount));
    const text = this.lineText(line);
    const col = Math.max(1, Math.min(span.col, text.length + 1));
    const lastCol = span.endLine === span.line ? span.endCol : text.length;
    const length = Math.max(1, Math.min(lastCol - col + 1, text.length - col + 1));
    return { file: this.file, line, col, length, lineText: text };
  }
}

export interface FormatOptions {
  /** How an option diagnostic names its option (default: the `CompileOptions` key, e.g. `hparams`). */
  readonly optionName?: (d: OptionDiagnostic) => string;
  /** What an option diagnostic's line starts with in place of a file location (e.g. the program name). */
  readonly origin?: string;
}

/**
 * Print one diagnostic with its source line and a caret underline; notes follow the same format. An option
 * diagnostic is one line without a location: `error: option hparams: unknown hyperparameter 'n_layerz' …`.
 */
export function formatDiagnostic(d: Diagnostic, fmt: FormatOptions = {}): string {
  const out =
    d.option !== undefined
      ? [`${fmt.origin ? `${fmt.origin}: ` : ''}${d.severity}: option ${fmt.optionName ? fmt.optionName(d) : d.option}: ${d.message}`]
      : [`${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`, ...snippet(d)];
  for (const n of d.notes) out.push(`${n.file}:${n.line}:${n.col}: note: ${n.message}`, ...snippet(n));
  return out.join('\n');
}

export function formatDiagnostics(ds: readonly Diagnostic[], fmt: FormatOptions = {}): string {
  return ds.map((d) => formatDiagnostic(d, fmt)).join('\n') + (ds.length ? '\n' : '');
}

/** Widest source excerpt shown under a diagnostic; longer lines are cut around the caret. */
export const SNIPPET_WIDTH = 120;

function snippet(d: { col: number; length: number; lineText: string }): string[] {
  if (!d.lineText.trim()) return [];
  // Show the line without its indentation (tabs as one space so the caret lines up); control characters
  // (a binary file, a stray escape) become '?' one for one, so they cannot garble the terminal or the caret.
  // eslint-disable-next-line no-control-regex
  const text = d.lineText.replace(/\t/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  const indent = text.length - text.trimStart().length;
  let shown = text.trimStart().trimEnd();
  let at = Math.max(0, d.col - 1 - indent);
  let len = Math.max(1, Math.min(d.length, shown.length - at));
  if (shown.length > SNIPPET_WIDTH) {
    // A window around the caret, with '…' where the line was cut.
    const from = Math.max(0, Math.min(at - 40, shown.length - SNIPPET_WIDTH));
    const to = Math.min(shown.length, from + SNIPPET_WIDTH);
    shown = `${from > 0 ? '…' : ''}${shown.slice(from, to)}${to < shown.length ? '…' : ''}`;
    at = at - from + (from > 0 ? 1 : 0);
    len = Math.max(1, Math.min(len, to - (d.col - 1 - indent)));
  }
  return [`    ${shown}`, `    ${' '.repeat(at)}^${'~'.repeat(len - 1)}`];
}

// ---------------------------------------------------------------- near-miss suggestions

/** Edit distance with adjacent transpositions (optimal string alignment): `gelgu` is one edit from `geglu`. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (!a.length) return b.length;
  if (!b.length) return a.length;
  const w = b.length + 1;
  const d = new Array<number>((a.length + 1) * w);
  for (let i = 0; i <= a.length; i++) d[i * w] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min(d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) v = Math.min(v, d[(i - 2) * w + j - 2] + 1);
      d[i * w + j] = v;
    }
  }
  return d[a.length * w + b.length];
}

/** The closest candidate within an edit distance that grows with the name's length, if any. */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c === name) continue;
    let d = levenshtein(name, c);
    if (d > 0 && c.toLowerCase() === name.toLowerCase()) d = 0.5; // a case slip is the best guess
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= limit ? best : undefined;
}

/** ` (did you mean 'x'?)` or the empty string. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const s = suggest(name, candidates);
  return s === undefined ? '' : ` (did you mean '${s}'?)`;
}

/** Errors kept per run; the rest are counted and summed up in one last diagnostic (see `finish`). */
export const MAX_ERRORS = 100;

/**
 * Collects diagnostics, dropping exact repeats (the same error inside a loop body is reported once) and
 * keeping at most MAX_ERRORS errors: a binary file or a pasted log would otherwise give one error per byte.
 */
export class DiagnosticBag {
  readonly list: Diagnostic[] = [];
  private readonly seen = new Set<string>();
  private errors = 0;
  /** Errors dropped after MAX_ERRORS, and where the first of them was. */
  private dropped = 0;
  private firstDropped?: Span;

  constructor(private readonly sources: ReadonlyMap<string, SourceText>) {}

  source(file: string): SourceText | undefined {
    return this.sources.get(file);
  }

  /** Errors reported so far, the dropped ones included. */
  get errorCount(): number {
    return this.errors + this.dropped;
  }

  /** After the run: one `limit` diagnostic standing for the errors that were dropped, if any. */
  finish(): void {
    if (!this.dropped || !this.firstDropped) return;
    const n = this.dropped;
    this.dropped = 0;
    this.list.push({ severity: 'error', code: 'limit', message: `too many errors: ${n} more not shown (from here on)`, ...this.locate(this.firstDropped), notes: [] });
    this.errors++;
  }

  note(span: Span, message: string): DiagnosticNote {
    return { message, ...this.locate(span) };
  }

  /**
   * An error in a compile option (no source location). Never dropped: there are at most as many as the
   * option has entries.
   */
  addOption(code: DiagnosticCode, option: DiagnosticOption, key: string, message: string): void {
    const k = `option ${option}:${message}`;
    if (this.seen.has(k)) return;
    this.seen.add(k);
    this.errors++;
    this.list.push({ severity: 'error', code, message, option, key, notes: [] });
  }

  add(code: DiagnosticCode, span: Span, message: string, notes: readonly DiagnosticNote[] = [], severity: Severity = 'error'): void {
    const key = `${span.file}:${span.line}:${span.col}:${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (severity === 'error' && this.errors >= MAX_ERRORS) {
      if (!this.dropped) this.firstDropped = span;
      this.dropped++;
      return;
    }
    const loc = this.locate(span);
    if (severity === 'error') this.errors++;
    this.list.push({ severity, code, message, ...loc, notes });
  }

  private locate(span: Span): { file: string; line: number; col: number; length: number; lineText: string } {
    const src = this.sources.get(span.file);
    if (src) return src.locate(span);
    return { file: span.file, line: Math.max(1, span.line), col: Math.max(1, span.col), length: 1, lineText: '' };
  }
}
