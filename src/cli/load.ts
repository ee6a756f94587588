/** Shared CLI plumbing: read a model file (and an optional HF config.json), compile it, turn diagnostics into UserErrors. */
import * as fs from 'fs';
import { Command, Option } from 'commander';
import { compileModel, modelInfo, Diagnostic, OptionDiagnostic } from '../../grammar';
import { FormatOptions, formatDiagnostics } from '../../grammar/diagnostics';
import { Graph } from '../ir';
import { UserError } from './errors';

export interface ModelOptions {
  variant?: string;
  config?: string;
  /** Direct hyperparameter overrides (`--hparam`, commander's name for it), applied after the variant and the config. */
  hparam?: Record<string, number | boolean | string>;
  batch?: number;
  seq?: number;
}

/** --variant, --config, --hparam, --batch, --seq: the options every command that builds a graph takes. */
export function addModelOptions(cmd: Command, { dims = true } = {}): Command {
  cmd
    .option('--variant <name>', 'model variant (e.g. 2b, 9b, 27b)')
    .option('--config <config.json>', 'Hugging Face config.json whose values override the variant through the model file\'s `config` mapping')
    .option('--hparam <name=value>', 'set a hyperparameter of the model file (repeatable), after --variant and --config: e.g. --variant 2b --hparam n_layers=4 --hparam max_pos=16384', hparamArg);
  if (dims) {
    cmd.addOption(new Option('--batch <n>', 'bind the symbolic dim `batch`').argParser(positiveInt('--batch')));
    cmd.addOption(new Option('--seq <n>', 'bind the symbolic dim `seq`').argParser(positiveInt('--seq')));
  }
  return cmd;
}

/** `--hparam name=value` (repeatable): a number, true/false, or else a string. */
function hparamArg(v: string, prev: Record<string, number | boolean | string> = {}): Record<string, number | boolean | string> {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S(?:.*\S)?)\s*$/.exec(v);
  if (!m) throw new UserError(`option --hparam takes name=value (e.g. --hparam n_layers=4), got '${v}'`);
  const [, name, raw] = m;
  if (name in prev) throw new UserError(`option --hparam sets '${name}' twice`);
  const n = Number(raw);
  const value = raw === 'true' ? true : raw === 'false' ? false : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw) && Number.isFinite(n) ? n : raw;
  return { ...prev, [name]: value };
}

export function positiveInt(option: string): (v: string) => number {
  return (v: string) => {
    // Digits only: Number() would also take '0x10', '1e3', '4.0' and ' 8 '.
    const n = /^\s*[0-9]+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n <= 0) throw new UserError(`option ${option} takes a positive integer, got '${v}'`);
    return n;
  };
}

/**
 * A model file's text. IR JSON (what `ir --json` and `compile -o` write) is refused by name: the commands read
 * model files, and a graph in JSON is for code (`fromJSON` in src/ir/json.ts verifies and returns it).
 */
export function readModelSource(file: string): string {
  const text = readTextFile(file, 'model file');
  if (/^\s*\{/.test(text) && /"format"\s*:\s*"lapidary-ir"/.test(text.slice(0, 400))) {
    throw new UserError(`'${file}' is Lapidary IR JSON (what \`ir --json\` and \`compile -o\` write), not a model file: the commands read model files; load IR JSON in code with fromJSON (src/ir/json.ts)`);
  }
  return text;
}

export function readTextFile(path: string, what: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} '${path}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
}

export function readJsonFile(path: string, what: string): unknown {
  const text = readTextFile(path, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${what} '${path}' is not valid JSON: ${(e as Error).message}`);
  }
}

/** The dims a model file declares (read and parsed, not elaborated: cheap). */
export function declaredDims(file: string): readonly string[] {
  return modelInfo(readModelSource(file), file).dims;
}

/** The command-line option behind a compile option's diagnostic: `hparams` → `--hparam`, dim `seq` → `--seq`. */
export function cliOptionName(d: OptionDiagnostic): string {
  switch (d.option) {
    case 'variant':
      return '--variant';
    case 'hparams':
      return '--hparam';
    case 'dims':
      return d.key === 'batch' || d.key === 'seq' ? `--${d.key}` : `dim '${d.key}'`;
  }
}

/** Diagnostics about an option print as `lapidary: error: option --hparam: …`, without a model-file location. */
const CLI_FORMAT: FormatOptions = { optionName: cliOptionName, origin: 'lapidary' };

function diagnosticsError(file: string, ds: readonly Diagnostic[]): UserError {
  const n = Math.max(ds.filter((d) => d.severity === 'error').length, 1);
  // Only option errors (a mistyped --hparam, an unknown --variant): plain `lapidary: error: option …` lines,
  // like any other bad option; nothing in the model file to show.
  if (ds.length && ds.every((d) => d.option !== undefined)) {
    const lines = ds.map((d) => `option ${cliOptionName(d as OptionDiagnostic)}: ${d.message}`);
    return lines.length === 1 ? new UserError(lines[0]) : new UserError(lines.join('; '), lines.map((l) => `lapidary: error: ${l}\n`).join(''));
  }
  const text = formatDiagnostics(ds, CLI_FORMAT);
  return new UserError(`${n} error(s) in ${file}`, `${text}${text.endsWith('\n') ? '' : '\n'}${n} error${n === 1 ? '' : 's'}\n`);
}

/**
 * `check` without --variant/--config: the defaults and every variant are elaborated, so a size that only
 * breaks one variant (a head count that does not divide in the 27b) is an error of the file too. Errors
 * that only one variant has say which (`… (variant 27b)`); the same error in several is reported once.
 */
export function checkAllVariants(file: string, opts: ModelOptions): void {
  const source = readModelSource(file);
  const info = modelInfo(source, file);
  const dims: Record<string, number> = {};
  if (opts.batch !== undefined) dims.batch = opts.batch;
  if (opts.seq !== undefined) dims.seq = opts.seq;
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const variant of [undefined, ...info.variants]) {
    const r = compileModel(source, file, { variant, dims, ...hparamsOf(opts) });
    for (const d of r.diagnostics) {
      // An option error is the option's whatever the variant: reported once (the first variant's message).
      const key = d.option !== undefined ? `option ${d.option} ${d.key} ${d.code}` : `${d.file}:${d.line}:${d.col}:${d.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(variant === undefined || d.severity !== 'error' || d.option !== undefined ? d : { ...d, message: `${d.message} (variant ${variant})` });
    }
    // Syntax and declaration errors are the same for every variant: no need to elaborate the others.
    if (info.diagnostics.some((d) => d.severity === 'error')) break;
  }
  const errors = out.filter((d) => d.severity === 'error');
  if (errors.length) throw diagnosticsError(file, out);
  const warnings = formatDiagnostics(out, CLI_FORMAT);
  if (warnings) process.stderr.write(warnings.endsWith('\n') ? warnings : warnings + '\n');
}

function hparamsOf(opts: ModelOptions): { hparams?: Record<string, number | boolean | string> } {
  return opts.hparam ? { hparams: opts.hparam } : {};
}

/**
 * Compile a model file with the command's options; diagnostics become a UserError (exit 1). With `requireDims`,
 * a dim bound by --batch / --seq that the model's shapes do not depend on is an error of that option.
 */
export function loadModel(file: string, opts: ModelOptions, extraDims: Record<string, number> = {}, o: { requireDims?: boolean } = {}): Graph {
  const source = readModelSource(file);
  const config = opts.config ? (readJsonFile(opts.config, 'config') as object) : undefined;
  if (config !== undefined && (typeof config !== 'object' || config === null || Array.isArray(config))) {
    throw new UserError(`config '${opts.config}' must be a JSON object`);
  }
  const dims: Record<string, number> = { ...extraDims };
  if (opts.batch !== undefined) dims.batch = opts.batch;
  if (opts.seq !== undefined) dims.seq = opts.seq;
  const r = compileModel(source, file, { variant: opts.variant, config, dims, ...hparamsOf(opts), ...(o.requireDims ? { requireDims: true } : {}) });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (!r.graph || errors.length) throw diagnosticsError(file, r.diagnostics);
  const warnings = formatDiagnostics(r.diagnostics.filter((d) => d.severity === 'warning'), CLI_FORMAT);
  if (warnings) process.stderr.write(warnings.endsWith('\n') ? warnings : warnings + '\n');
  return r.graph;
}
