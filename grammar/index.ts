/**
 * The front end: model files → IR graphs.
 *
 *   compileModel(source, file, { variant, config, dims, hparams }) → { graph?, diagnostics }
 *
 * The prelude (grammar/prelude.model) is loaded before every model file; the model's blocks may shadow
 * prelude blocks. User errors never throw: they come back as diagnostics (see diagnostics.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Graph } from '../src/ir/types';
import type { Program } from './ast';
import { Diagnostic, DiagnosticBag, SourceText, formatDiagnostic, formatDiagnostics } from './diagnostics';
import { CompileOptions, Elaborator } from './elaborate';
import { parse } from './parser';

export type { CompileOptions } from './elaborate';
export type { Diagnostic, DiagnosticCode, DiagnosticNote, DiagnosticOption, FormatOptions, OptionDiagnostic, Severity, SourceDiagnostic } from './diagnostics';
export { formatDiagnostic, formatDiagnostics, isOptionDiagnostic } from './diagnostics';
export { parse } from './parser';
export { PRIMS } from './primitives';

export const PRELUDE_FILE = 'prelude.model';

export interface CompileResult {
  /** Present when there were no errors. */
  readonly graph?: Graph;
  /**
   * Errors (and warnings): first those about the options (`option` set, no location: an unknown variant,
   * hyperparameter or dim), then the rest sorted by file position.
   */
  readonly diagnostics: Diagnostic[];
}

let preludeText: string | undefined;
/** The prelude's source: next to this module (ts-jest), in grammar/ above dist/ (compiled), or under the working directory (bundled). */
export function preludeSource(): string {
  if (preludeText !== undefined) return preludeText;
  const candidates = [
    path.join(__dirname, PRELUDE_FILE),
    path.join(__dirname, '..', '..', 'grammar', PRELUDE_FILE),
    path.join(process.cwd(), 'grammar', PRELUDE_FILE),
  ];
  for (const c of candidates) {
    if (fs.existsSync(c)) return (preludeText = fs.readFileSync(c, 'utf8'));
  }
  throw new Error(`the prelude is missing (looked in ${candidates.join(', ')})`);
}

interface Parsed {
  readonly program: Program;
  readonly src: SourceText;
  readonly diagnostics: readonly Diagnostic[];
  readonly hadErrors: boolean;
}

let preludeParsed: Parsed | undefined;
function prelude(): Parsed {
  if (preludeParsed) return preludeParsed;
  const text = preludeSource();
  const src = new SourceText(PRELUDE_FILE, text);
  const bag = new DiagnosticBag(new Map([[PRELUDE_FILE, src]]));
  const r = parse(text, PRELUDE_FILE, bag, src);
  return (preludeParsed = { program: r.program, src, diagnostics: bag.list, hadErrors: r.hadErrors });
}

/** Option diagnostics first (in the order reported), then by file position. */
function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  const rank = (x: Diagnostic, y: Diagnostic): number => {
    if (x.option !== undefined || y.option !== undefined) return (x.option !== undefined ? 0 : 1) - (y.option !== undefined ? 0 : 1);
    return x.file === y.file ? x.line - y.line || x.col - y.col : 0;
  };
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => rank(a.d, b.d) || a.i - b.i)
    .map((x) => x.d);
}

function setup(source: string, file: string): { bag: DiagnosticBag; el?: Elaborator } {
  const pre = prelude();
  const userFile = file === PRELUDE_FILE ? `./${file}` : file;
  const src = new SourceText(userFile, source);
  const bag = new DiagnosticBag(
    new Map([
      [PRELUDE_FILE, pre.src],
      [userFile, src],
    ]),
  );
  for (const d of pre.diagnostics) bag.list.push(d);
  const r = parse(source, userFile, bag, src);
  if (r.hadErrors || pre.hadErrors) return { bag };
  const el = new Elaborator(bag, userFile, PRELUDE_FILE);
  el.collect(pre.program);
  el.collect(r.program);
  el.check();
  return { bag, el };
}

/** Compile a model file into an IR graph. Never throws for errors in the model file. */
export function compileModel(source: string, file: string, opts: CompileOptions = {}): CompileResult {
  let bag: DiagnosticBag | undefined;
  try {
    const s = setup(source, file);
    bag = s.bag;
    if (!s.el) {
      bag.finish();
      return { diagnostics: sortDiagnostics(bag.list) };
    }
    const okH = s.el.evalHparams(opts);
    const okD = s.el.bindDims(opts);
    // Elaborate even after errors of the static checks (an unknown name, a bad call): the forward pass then
    // reports the independent shape and type errors of the same run too (repeats are dropped by the bag).
    const graph = okH && okD ? s.el.build(opts) : undefined;
    bag.finish();
    let diagnostics = sortDiagnostics(bag.list);
    if (opts.config !== undefined) {
      // Errors on lines whose hyperparameters came from config.json say which keys set them.
      const el = s.el;
      diagnostics = diagnostics.map((d) => {
        if (d.severity !== 'error' || d.option !== undefined || d.file === PRELUDE_FILE || d.code === 'config' || d.code === 'unknown-hparam') return d;
        const notes = el.configNotes(d.lineText);
        return notes.length ? { ...d, notes: [...d.notes, ...notes] } : d;
      });
    }
    return graph && !diagnostics.some((d) => d.severity === 'error') ? { graph, diagnostics } : { diagnostics };
  } catch (e) {
    // A bug in the compiler: report it as a diagnostic rather than crash the caller.
    const ds = bag ? bag.list : [];
    const msg = e instanceof Error ? e.message : String(e);
    const src = new SourceText(file, source);
    ds.push({ severity: 'error', code: 'internal', message: `internal compiler error: ${msg}`, ...src.locate(src.span(0, 1)), notes: [] });
    return { diagnostics: sortDiagnostics(ds) };
  }
}

/** Compile a model file from disk. */
export function compileFile(file: string, opts: CompileOptions = {}): CompileResult {
  return compileModel(fs.readFileSync(file, 'utf8'), file, opts);
}

export interface ModelInfo {
  readonly name?: string;
  readonly variants: string[];
  /** Hyperparameter names in definition order. */
  readonly hparams: string[];
  readonly dims: string[];
  /** Blocks the model file itself defines (not the prelude's). */
  readonly blocks: string[];
  /** The `config {}` mapping (Hugging Face key path → hyperparameter), in file order: the first key present wins. */
  readonly config: { key: string[]; hparam: string; nullValue?: number | boolean | string }[];
  /** `key = value` entries of the config block: what a config.json for this model file says (`model_type`). */
  readonly configExpects: { key: string[]; value: number | boolean | string }[];
  readonly diagnostics: Diagnostic[];
}

/** What a model file declares, without elaborating it (for --help texts and tools). */
export function modelInfo(source: string, file: string): ModelInfo {
  let s: ReturnType<typeof setup>;
  try {
    s = setup(source, file);
  } catch (e) {
    // Like compileModel: a compiler bug is reported, never thrown at the caller.
    const src = new SourceText(file, source);
    const msg = e instanceof Error ? e.message : String(e);
    return { variants: [], hparams: [], dims: [], blocks: [], config: [], configExpects: [], diagnostics: [{ severity: 'error', code: 'internal', message: `internal compiler error: ${msg}`, ...src.locate(src.span(0, 1)), notes: [] }] };
  }
  const { bag, el } = s;
  bag.finish();
  return {
    ...(el?.modelName !== undefined ? { name: el.modelName } : {}),
    variants: el ? [...el.variants.keys()] : [],
    hparams: el ? [...el.hparamDefs.keys()] : [],
    dims: el ? [...el.dimDecls.keys()] : [],
    blocks: el ? [...el.blocks.entries()].filter(([, b]) => b.file !== PRELUDE_FILE).map(([k]) => k) : [],
    config: el ? el.configMapping() : [],
    configExpects: el ? el.configExpectations() : [],
    diagnostics: sortDiagnostics(bag.list),
  };
}

