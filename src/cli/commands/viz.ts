/**
 * `lapidary viz FILE`: the IR in a web page — one self-contained HTML file (`-o graph.html`), a live page on
 * 127.0.0.1 that follows the model file (`--serve`), or Model Explorer's JSON graph format (`--format json`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { Graph } from '../../ir';
import { Pass, PassError, PipelineError, resolvePipeline, runPipeline, BUILTIN_PASSES } from '../../passes';
import { getChip } from '../../backends/tpu/chips';
import { TpuError } from '../../backends/tpu/errors';
import { Mesh, Strategy, evaluatePlan, makeMesh, parseStrategy, resolveTopology } from '../../backends/tpu';
import { PipelineStep, buildVizData, Chip } from '../../viz/data';
import { NodeSharding, meshInfo, shardGraph } from '../../viz/sharding';
import { addTpuOptions, planOptions, toUserError } from './compile-tpu';
import { renderHtml } from '../../viz/html';
import { toModelExplorer, modelExplorerNodeData } from '../../viz/modelExplorer';
import { PortInUseError, startVizServer } from '../../viz/server';
import { declaredDims, loadModel, addModelOptions, ModelOptions, positiveInt } from '../load';
import { UserError } from '../errors';

export interface VizOptions extends ModelOptions {
  output?: string;
  format: 'html' | 'json' | 'node-data';
  passes?: string | false;
  chip: string;
  /** A Hugging Face checkpoint folder: its config.json sets the sizes (the weights are not read). */
  checkpoint?: string;
  /** The metric of --format node-data (the CLI refuses --metric with the other formats, where it does nothing). */
  metric: string;
  serve?: boolean;
  port: number;
  /** The sharding overlay: the TPU options of `lapidary cost` (shared definitions, compile-tpu.ts). */
  topology?: string;
  chips?: number;
  mesh?: string;
  strategy?: string;
  matmulEfficiency?: number;
}

/** The options `viz` takes from the TPU commands' definitions (compile-tpu.ts), so they read and check the same. */
const TPU_OPTIONS = ['--chip', '--topology', '--chips', '--mesh', '--strategy', '--matmul-efficiency'];

/**
 * Sizes the cost overlay assumes for symbolic dims the user left unbound; a dim the model bounds
 * (`dim seq <= n_ctx`) is taken at most at its bound, so the costs are those of a shape the model can run.
 */
export const COST_DEFAULTS: Readonly<Record<string, number>> = { batch: 1, seq: 4096 };

function pipelineOf(opts: VizOptions): Pass[] {
  if (opts.passes === false) return [];
  try {
    return resolvePipeline({ passes: opts.passes !== undefined ? opts.passes.split(',').map((s) => s.trim()).filter(Boolean) : undefined });
  } catch (e) {
    if (e instanceof PipelineError) throw new UserError(e.message);
    throw e;
  }
}

/** The graph as compiled, then after each pass, with each pass's rewrite trace. */
export function pipelineSteps(graph: Graph, passes: readonly Pass[]): PipelineStep[] {
  if (!passes.length) return [{ name: 'input', graph }];
  const graphs: Graph[] = [];
  let r;
  try {
    r = runPipeline(graph, passes, { after: (_p, g) => void graphs.push(g) });
  } catch (e) {
    if (e instanceof PassError) throw new UserError(e.message);
    throw e;
  }
  const steps: PipelineStep[] = [{ name: 'input', graph }];
  let at = 0;
  r.stats.forEach((s, i) => {
    const trace = r.trace.slice(at, at + s.rewrites);
    at += s.rewrites;
    steps.push({ name: s.name, graph: graphs[i], trace });
  });
  return steps;
}

function chipOf(name: string): Chip {
  try {
    return getChip(name);
  } catch (e) {
    if (e instanceof TpuError) throw new UserError(e.message);
    throw e;
  }
}

export function costEnv(g: Graph): Record<string, number> {
  const env: Record<string, number> = {};
  for (const d of g.dims) env[d] = Math.min(COST_DEFAULTS[d] ?? 1, g.dimBounds?.[d] ?? Infinity);
  return env;
}

interface MeshPlan {
  readonly mesh: Mesh;
  readonly strategy: Strategy;
}

/** The mesh of the sharding overlay, checked before the model is built (mesh errors are cheap and common). */
function meshPlan(opts: VizOptions, file: string): MeshPlan | undefined {
  if (!opts.mesh) {
    for (const [k, flag] of [['topology', '--topology'], ['chips', '--chips'], ['strategy', '--strategy'], ['matmulEfficiency', '--matmul-efficiency']] as const) {
      if (opts[k] !== undefined) throw new UserError(`option ${flag} describes the sharding overlay: give --mesh too (e.g. --mesh data=16,model=4)`);
    }
    return undefined;
  }
  if (opts.mesh === 'auto') throw new UserError("viz shows one plan: give an explicit --mesh (e.g. --mesh data=16,model=4); 'lapidary cost --mesh auto' ranks the plans");
  if (opts.format !== 'html') throw new UserError('--mesh shows the sharding in the page; it cannot be combined with --format json or node-data');
  // A model without a `seq` dim (an MLP over feature vectors) needs only --batch.
  const needSeq = declaredDims(file).includes('seq');
  if (opts.batch === undefined || (needSeq && opts.seq === undefined)) {
    throw new UserError(`--mesh partitions the graph at concrete sizes: give --batch${needSeq ? ' and --seq' : ''} too (the global batch in sequences${needSeq ? ', tokens per sequence' : ''})`);
  }
  const po = planOptions({ ...opts, mode: 'forward' });
  return toUserError(() => {
    const mesh = makeMesh(resolveTopology(getChip(po.chip), po), po.mesh!);
    return { mesh, strategy: parseStrategy(po.strategy, mesh) };
  });
}

/** Each step's graph partitioned over the mesh (a pass that changed nothing returns the same graph: reuse it). */
function shardSteps(steps: readonly PipelineStep[], plan: MeshPlan, opts: VizOptions): Map<number, NodeSharding>[] {
  const done = new Map<Graph, Map<number, NodeSharding>>();
  return steps.map((s) => {
    let m = done.get(s.graph);
    if (!m) {
      try {
        m = shardGraph(s.graph, plan.mesh, plan.strategy, { matmulEfficiency: opts.matmulEfficiency });
      } catch (e) {
        if (e instanceof TpuError || /^partitioner: /.test((e as Error).message)) {
          throw new UserError(`--mesh ${opts.mesh}: cannot partition the graph${s.name === 'input' ? '' : ` after pass ${s.name}`}: ${(e as Error).message.replace(/^partitioner: /, '')}`);
        }
        throw e;
      }
      done.set(s.graph, m);
    }
    return m;
  });
}

/** `lapidary cost`'s headline for a graph (the last step: with the default pipeline, the graph `cost` plans). */
function planLine(graph: Graph, opts: VizOptions): string {
  const r = toUserError(() => evaluatePlan(graph, planOptions({ ...opts, mode: 'forward' }), { batch: opts.batch!, seq: opts.seq ?? 1 }));
  return `step ${(r.step_time_s * 1e3).toPrecision(3)} ms (forward), MFU ${(100 * r.mfu).toFixed(1)}%, ${(r.memory_per_chip_bytes / 1e9).toFixed(2)} GB/chip, ${r.bound}-bound`;
}

/** Build what `viz` writes (HTML page, Model Explorer graph JSON, or Model Explorer node data). */
export function vizOutput(file: string, opts: VizOptions, live = false): string {
  const chip = chipOf(opts.chip);
  const plan = meshPlan(opts, file);
  const graph = loadModel(file, opts);
  const env = costEnv(graph);
  if (opts.format === 'node-data') {
    try {
      return JSON.stringify(modelExplorerNodeData(graph, opts.metric, env, chip)) + '\n';
    } catch (e) {
      throw new UserError(`--metric: ${(e as Error).message}`);
    }
  }
  const steps = pipelineSteps(graph, pipelineOf(opts));
  const title = `${graph.name}${graph.variant ? ` ${graph.variant}` : ''}`;
  if (opts.format === 'json') return JSON.stringify(toModelExplorer(steps.map((s, i) => ({ id: i === 0 ? title : `${title} after ${s.name}`, graph: s.graph })), title)) + '\n';
  const info: Record<string, string> = { file: path.basename(file) };
  if (graph.variant) info.variant = graph.variant;
  if (opts.config) info.config = path.basename(opts.config);
  const bound = [opts.batch !== undefined ? `batch=${opts.batch}` : '', opts.seq !== undefined ? `seq=${opts.seq}` : ''].filter(Boolean);
  if (bound.length) info.dims = bound.join(', ');
  let sharding;
  if (plan) {
    const mesh = meshInfo(plan.mesh, plan.strategy);
    sharding = { steps: shardSteps(steps, plan, opts), mesh };
    info.mesh = mesh;
    const last = steps[steps.length - 1];
    info[steps.length > 1 ? `plan (after ${last.name})` : 'plan'] = planLine(last.graph, opts);
  }
  const data = buildVizData(steps, { title, info, costEnv: env, chip, live, sharding });
  return renderHtml(data);
}

function writeOutput(out: string, text: string, inputs: string[]): void {
  const o = path.resolve(out);
  for (const i of inputs) if (path.resolve(i) === o) throw new UserError(`-o '${out}' is an input file; refusing to overwrite it`);
  if (fs.existsSync(o) && fs.statSync(o).isDirectory()) throw new UserError(`-o '${out}' is a directory`);
  const dir = path.dirname(o);
  if (!fs.existsSync(dir)) throw new UserError(`-o '${out}': directory '${path.dirname(out)}' does not exist`);
  const tmp = `${o}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, o);
}

export function register(program: Command): void {
  const cmd = addModelOptions(
    program
      .command('viz')
      .description('visualize the IR: a self-contained HTML page (-o), a live page that follows the model file (--serve), or Model Explorer JSON (--format json)')
      .argument('<file>', 'model file')
      .option('-o, --output <file>', 'write the page (or JSON) here')
      .addOption(new Option('--format <format>', "html: the page; json: Model Explorer's graph JSON; node-data: a Model Explorer overlay of --metric").choices(['html', 'json', 'node-data']).default('html'))
      .option('--passes <list>', `comma-separated pipeline to show step by step (default: ${BUILTIN_PASSES.map((p) => p.name).join(',')})`)
      .option('--no-passes', 'show only the graph as compiled')
      .addOption(new Option('--metric <name>', 'metric for --format node-data (an error with the other formats)').choices(['flops', 'transcendentals', 'bytes', 'intensity', 'time']).default('flops'))
      .option('--checkpoint <dir>', "a Hugging Face checkpoint folder: the sizes come from its config.json, as in run (the weights are not read)")
      .option('--serve', 'serve the page on 127.0.0.1 and reload it when the model file changes')
      .addOption(new Option('--port <n>', 'port for --serve (0: any free port)').default(8765).argParser((v: string) => (v === '0' ? 0 : positiveInt('--port')(v)))),
  );
  // The TPU options, as `lapidary cost` defines them; --chip also picks the roofline chip, so it has a default here.
  const tpu = addTpuOptions(new Command());
  for (const flag of TPU_OPTIONS) {
    const o = tpu.options.find((x) => x.long === flag)!;
    if (flag === '--chip') {
      o.description = `${o.description.replace(/ \(required\)$/, '')}: the roofline time estimate, and the chip of --mesh`;
      o.default('v5e');
    }
    if (flag === '--mesh') o.description = "logical mesh for the sharding overlay, e.g. data=16,model=4 (with --batch, --seq; each node's partition spec, collectives and time per chip)";
    cmd.addOption(o);
  }
  cmd.action(async (file: string, opts: VizOptions) => {
    // --metric picks the node-data overlay's value; the page has its own "Colour by" menu, the graph JSON no values.
    if (cmd.getOptionValueSource('metric') === 'cli' && opts.format !== 'node-data') {
      throw new UserError(`--metric ${opts.metric} applies to --format node-data only; with --format ${opts.format} it does nothing${opts.format === 'html' ? ' (the page colours by any metric from its "Colour by" menu)' : ''}: drop --metric, or give --format node-data`);
    }
    // As in run and generate: the checkpoint's config.json unless --config names another.
    if (opts.checkpoint !== undefined && opts.config === undefined) {
      const cfg = path.join(opts.checkpoint, 'config.json');
      if (!fs.existsSync(cfg)) throw new UserError(`--checkpoint '${opts.checkpoint}': no config.json there (viz reads only the sizes from it)`);
      opts.config = cfg;
    }
    const inputs = [file, ...(opts.config ? [opts.config] : [])];
    if (opts.serve) {
      if (opts.format !== 'html') throw new UserError('--serve shows the page; it cannot be combined with --format json or node-data');
      if (opts.port > 65535) throw new UserError(`option --port takes a port number up to 65535, got ${opts.port}`);
      let server;
      try {
        server = await startVizServer({
          port: opts.port,
          build: () => vizOutput(file, opts, true),
          watch: inputs,
          log: (l) => process.stderr.write(`lapidary viz: ${l}\n`),
        });
      } catch (e) {
        if (e instanceof PortInUseError) throw new UserError(e.message);
        throw e;
      }
      if (opts.output) writeOutput(opts.output, vizOutput(file, opts), inputs);
      process.stderr.write(`lapidary viz: serving ${server.url} (only on this machine); watching ${inputs.join(', ')}; Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return;
    }
    const text = vizOutput(file, opts);
    if (opts.output) writeOutput(opts.output, text, inputs);
    else if (opts.format === 'html') throw new UserError('viz writes a page: give -o FILE.html (or --serve to open it live, or --format json for stdout)');
    else process.stdout.write(text);
    if (opts.output) process.stderr.write(`lapidary viz: wrote ${opts.output} (${(text.length / 1e6).toFixed(2)} MB)\n`);
  });
}
