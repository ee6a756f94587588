/**
 * `lapidary compile FILE`: build the graph, run the pass pipeline, print per-pass statistics.
 * The pipeline is target-independent; what a target adds (emitting code) is one entry in TARGETS.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { Graph, countOps, printGraph, graphToJSONText } from '../../ir';
import { Pass, PassError, PassStat, PipelineError, PluginError, TraceEntry, loadPlugin, resolvePipeline, runPipeline, BUILTIN_PASSES } from '../../passes';
import { loadModel, addModelOptions, declaredDims, ModelOptions } from '../load';
import { UserError } from '../errors';
import { ensureDir, errText, writeFileAtomic } from '../../fsutil';
import { addTpuOptions, emitTpu } from './compile-tpu';

export interface CompileOptions extends ModelOptions, PipelineCliOptions {
  target: string;
  printAfter?: string[];
  dumpDir?: string;
  timings?: boolean;
  json?: boolean;
  trace?: string;
  output?: string;
  listPasses?: boolean;
}

export interface CompileResultInfo {
  graph: Graph;
  stats: readonly PassStat[];
  trace: readonly TraceEntry[];
  /** What the target adds to the --json output. */
  target?: Record<string, unknown>;
}

/** A compilation target: what it does with the optimised graph. Add one by adding an entry. */
export interface Target {
  readonly description: string;
  /** Emit / report for the optimised graph; returns extra fields for --json and lines for the text output. */
  emit?(graph: Graph, opts: CompileOptions, file: string): { json?: Record<string, unknown>; lines?: string[] } | void;
}

export const TARGETS: Record<string, Target> = {
  cpu: { description: 'the tfjs CPU backend (run it with `lapidary run`): the optimised graph is the program' },
  tpu: { description: 'mesh-partitioned StableHLO/HLO and cost.json into the -o directory (see docs/tpu.md)', emit: (g, o, file) => emitTpu(g, o, file) },
};

const collect = (v: string, prev: unknown) => [...(Array.isArray(prev) ? prev : []), v];


function writeDump(dir: string, name: string, text: string): void {
  try {
    fs.writeFileSync(path.join(dir, name), text);
  } catch (e) {
    throw new UserError(`--dump-dir: cannot write '${path.join(dir, name)}': ${errText(e)}`);
  }
}

const realPath = (p: string) => {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/** An output file must not be an input (symlinks followed), nor a directory, and its directory must exist. */
export function checkOutputFile(out: string, inputs: string[], option: string): void {
  const o = realPath(out);
  for (const i of inputs) if (realPath(i) === o) throw new UserError(`${option} '${out}' is an input file; refusing to overwrite it`);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UserError(`${option} '${out}' is a directory; give a file name`);
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`${option} '${out}': the directory '${dir}' does not exist`);
}

const pad = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - s.length));
const lpad = (s: string, n: number) => ' '.repeat(Math.max(0, n - s.length)) + s;

/** The per-pass table; the lines a pass wrote with `ctx.log` are indented under its row. */
export function statsTable(stats: readonly PassStat[], timings: boolean): string[] {
  const w = Math.max(4, ...stats.map((s) => s.name.length));
  const head = `${pad('pass', w)}  ${lpad('nodes', 13)}  ${lpad('rewrites', 8)}${timings ? `  ${lpad('ms', 8)}  ${lpad('verify ms', 9)}` : ''}`;
  const rows = stats.flatMap((s) => [
    `${pad(s.name, w)}  ${lpad(`${s.nodes_before} → ${s.nodes_after}`, 13)}  ${lpad(s.changed ? String(s.rewrites) : '-', 8)}${
      timings ? `  ${lpad(s.ms.toFixed(1), 8)}  ${lpad(s.verify_ms.toFixed(1), 9)}` : ''
    }`,
    ...(s.log ?? []).flatMap((m) => m.split('\n')).map((m) => `  ↳ ${m}`),
  ]);
  const total = stats.reduce((a, s) => a + s.ms, 0);
  const vt = stats.reduce((a, s) => a + s.verify_ms, 0);
  if (timings) rows.push(`${pad('total', w)}  ${lpad('', 13)}  ${lpad('', 8)}  ${lpad(total.toFixed(1), 8)}  ${lpad(vt.toFixed(1), 9)}`);
  return [head, ...rows];
}

/** The options that choose the pass pipeline; `compile`, `run` and `generate` share them. */
export interface PipelineCliOptions {
  passes?: string;
  pass?: string[] | boolean;
  plugin?: string[];
  passAfter?: string;
}

/** --passes, --no-pass, --plugin, --pass-after (one definition for every command that runs the pipeline). */
export function addPipelineOptions(cmd: Command): Command {
  return cmd
    .option('--passes <list>', `comma-separated pipeline (default: ${BUILTIN_PASSES.map((p) => p.name).join(',')})`)
    .addOption(new Option('--no-pass <name>', 'drop a pass from the pipeline (repeatable, or a comma-separated list)').argParser(collect))
    .addOption(new Option('--plugin <file>', 'load passes from a .js/.mjs/.ts module (repeatable); see docs/passes.md').argParser(collect))
    .option('--pass-after <name>', 'run plugin passes right after this pass (default: at the end)');
}

/** The passes those options select (plugins loaded); option and plugin errors are UserErrors. */
export function pipelineFromOptions(opts: PipelineCliOptions, api: () => object): { passes: Pass[]; plugins: Pass[] } {
  if (opts.passAfter !== undefined && !(opts.plugin ?? []).length) throw new UserError(`--pass-after '${opts.passAfter}' places the passes of --plugin files; no --plugin was given`);
  const plugins: Pass[] = [];
  for (const p of opts.plugin ?? []) {
    try {
      plugins.push(...loadPlugin(p, api()));
    } catch (e) {
      if (e instanceof PluginError) throw new UserError(e.message);
      throw e;
    }
  }
  try {
    const passes = resolvePipeline({
      passes: opts.passes !== undefined ? opts.passes.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      // --no-pass a --no-pass b, or --no-pass a,b (like --passes)
      without: (Array.isArray(opts.pass) ? opts.pass : []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
      plugins,
      pluginsAfter: opts.passAfter,
    });
    return { passes, plugins };
  } catch (e) {
    if (e instanceof PipelineError) throw new UserError(e.message);
    throw e;
  }
}

/** Everything `compile` does short of printing: exported for tests and for other commands. */
export function compileFile(file: string, opts: CompileOptions, api: () => object): CompileResultInfo {
  const target = TARGETS[opts.target];
  if (!target) throw new UserError(`--target: unknown target '${opts.target}' (targets: ${Object.keys(TARGETS).join(', ')})`);
  const { passes, plugins } = pipelineFromOptions(opts, api);
  const names = new Set([...BUILTIN_PASSES.map((p) => p.name), ...plugins.map((p) => p.name)]);
  for (const n of opts.printAfter ?? []) if (n !== 'all' && !names.has(n)) throw new UserError(`--print-after: unknown pass '${n}' (passes: ${[...names].join(', ')})`);
  const inputs = [file, ...(opts.plugin ?? []), ...(opts.config ? [opts.config] : [])];
  if (opts.output && opts.target !== 'tpu') checkOutputFile(opts.output, inputs, '--output');
  else if (opts.output) for (const i of inputs) if (realPath(i) === realPath(opts.output)) throw new UserError(`--output '${opts.output}' is an input file; refusing to overwrite it`);
  if (opts.output && opts.trace && realPath(opts.output) === realPath(opts.trace)) throw new UserError(`--output and --trace name the same file '${opts.trace}'; give each its own`);
  if (opts.trace && opts.dumpDir && realPath(opts.trace) === realPath(path.join(opts.dumpDir, 'trace.json'))) {
    throw new UserError(`--trace '${opts.trace}' is the trace.json that --dump-dir writes; give another file or drop --trace`);
  }
  // Like -o and --trace: the dump folder itself is created, a missing parent is an error.
  if (opts.dumpDir) ensureDir(opts.dumpDir, '--dump-dir', { parents: false });
  if (opts.trace) checkOutputFile(opts.trace, inputs, '--trace');
  // --target tpu --mode decode compiles the one-new-token step: seq = 1 (--seq is the KV cache's context).
  const decode = opts.target === 'tpu' && (opts as { mode?: string }).mode === 'decode';
  const graph = loadModel(file, decode && declaredDims(file).includes('seq') ? { ...opts, seq: 1 } : opts);
  if (opts.dumpDir) writeDump(opts.dumpDir, '00-input.ir.txt', printGraph(graph));
  const printAll = (opts.printAfter ?? []).includes('all');
  const printSet = new Set(opts.printAfter ?? []);
  let r;
  try {
    r = runPipeline(graph, passes, {
      after: (pass, g, _stat, i) => {
        if (printAll || printSet.has(pass.name)) process.stderr.write(`// ----- IR after ${pass.name} -----\n${printGraph(g)}`);
        if (opts.dumpDir) writeDump(opts.dumpDir, `${String(i + 1).padStart(2, '0')}-${pass.name}.ir.txt`, printGraph(g));
      },
    });
  } catch (e) {
    if (e instanceof PassError) throw new UserError(e.message);
    throw e;
  }
  if (opts.dumpDir) writeDump(opts.dumpDir, 'trace.json', JSON.stringify(r.trace) + '\n');
  if (opts.trace) writeFileAtomic(opts.trace, JSON.stringify({ passes: r.stats, trace: r.trace }) + '\n', '--trace');
  if (opts.output && opts.target !== 'tpu') writeFileAtomic(opts.output, graphToJSONText(r.graph), '--output');
  const emitted = target.emit?.(r.graph, opts, file) ?? undefined;
  return { graph: r.graph, stats: r.stats, trace: r.trace, target: emitted ? { ...(emitted.json ?? {}), lines: emitted.lines ?? [] } : undefined };
}

export function register(program: Command): void {
  const cmd = addModelOptions(
    addPipelineOptions(
      program
        .command('compile')
        .description('build the graph and run the pass pipeline (default: every built-in pass), printing per-pass statistics')
        .argument('<file>', 'model file')
        .addOption(new Option('--target <target>', 'compilation target').choices(Object.keys(TARGETS)).default('cpu')),
    )
      .addOption(new Option('--print-after <name>', "print the IR to stderr after this pass ('all': after every pass; repeatable)").argParser(collect))
      .option('--dump-dir <dir>', 'write the IR before and after every pass, and the rewrite trace, into this directory')
      .option('--trace <file>', 'write per-pass statistics and the rewrite trace (JSON, for the visualizer)')
      .option('-o, --output <path>', 'CPU pipeline (default target): the IR JSON file to write the optimised graph to; --target tpu: the output folder for the programs and cost.json (default <model>-<variant>-tpu)')
      .option('--timings', 'show per-pass wall times')
      .option('--json', 'print one JSON object: {"passes":[{name, ms, nodes_before, nodes_after, changed, rewrites, verify_ms, log}], "ops": {op: count}}')
      .option('--list-passes', 'list the built-in passes (and those of --plugin files) and exit'),
  );
  const generic = new Set(cmd.options);
  addTpuOptions(cmd, { forCompile: true });
  const tpuOnly = cmd.options.filter((o) => !generic.has(o));
  cmd.action((file: string, opts: CompileOptions) => {
    if (opts.target !== 'tpu') {
      // The plan options mean nothing to the CPU pipeline: refuse them rather than ignore them (the first one given is named).
      const given = tpuOnly.filter((o) => cmd.getOptionValueSource(o.attributeName()) === 'cli');
      if (given.length) {
        const argv: string[] = (program as unknown as { rawArgs?: string[] }).rawArgs ?? process.argv;
        const at = (o: (typeof given)[number]) => {
          const i = argv.findIndex((a) => a === o.long || a.startsWith(`${o.long}=`));
          return i < 0 ? Infinity : i;
        };
        const first = given.reduce((a, b) => (at(b) < at(a) ? b : a));
        throw new UserError(`option ${first.long} only applies to --target tpu`);
      }
    }
    (opts as { rematGiven?: boolean }).rematGiven = cmd.getOptionValueSource('remat') === 'cli';
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const api = () => require('../../index');
    if (opts.listPasses) {
      const plugins = (opts.plugin ?? []).flatMap((p) => {
        try {
          return loadPlugin(p, api());
        } catch (e) {
          if (e instanceof PluginError) throw new UserError(e.message);
          throw e;
        }
      });
      for (const p of [...BUILTIN_PASSES, ...plugins]) process.stdout.write(`${pad(p.name, 20)} ${p.description}${p.origin && p.origin !== 'builtin' ? `  [${p.origin}]` : ''}\n`);
      return;
    }
    const t0 = performance.now();
    const r = compileFile(file, opts, api);
    const total = performance.now() - t0;
    const ops = countOps(r.graph);
    if (opts.json) {
      const out: Record<string, unknown> = {
        passes: r.stats.map((s) => ({ name: s.name, ms: Math.round(s.ms * 100) / 100, nodes_before: s.nodes_before, nodes_after: s.nodes_after, changed: s.changed, rewrites: s.rewrites, verify_ms: Math.round(s.verify_ms * 100) / 100, log: s.log })),
        ops,
        nodes: r.graph.nodes.length,
        target: opts.target,
      };
      if (r.target) {
        const { lines: _l, ...rest } = r.target;
        Object.assign(out, rest);
      }
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    const lines = [
      `${r.graph.name}${r.graph.variant ? ` (variant ${r.graph.variant})` : ''} → target ${opts.target}`,
      ...statsTable(r.stats, !!opts.timings),
      '',
      `ops after the pipeline (${r.graph.nodes.length} nodes): ${Object.entries(ops).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      ...((r.target?.lines as string[] | undefined) ?? []),
    ];
    if (opts.timings) lines.push(`total ${total.toFixed(0)} ms (front end, passes, verification)`);
    process.stdout.write(lines.join('\n') + '\n');
  });
}
