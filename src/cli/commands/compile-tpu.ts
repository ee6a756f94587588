/**
 * The TPU side of the CLI: the options `lapidary cost` and `lapidary compile --target tpu` share, and the
 * tpu compilation target (programs + cost.json into a directory).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { Graph, ShapeError } from '../../ir';
import {
  CHIPS, Mode, PlanOptions, PlanResult, REMATS, Remat, TpuError, autoPlans, compileTpu, evaluatePlan, getChip, makeMesh,
  parseStrategy, chooseStrategy, withPlanNotes, resolveTopology, RankedPlan, LayerFunctionCount,
} from '../../backends/tpu';
import { UserError } from '../errors';
import { declaredDims, loadModel, ModelOptions, positiveInt } from '../load';
import { PassError, resolvePipeline, runPipeline } from '../../passes';
import { ensureDir, writeFileAtomic } from '../../fsutil';

export interface TpuCliOptions extends ModelOptions {
  chip?: string;
  topology?: string;
  chips?: number;
  mesh?: string;
  strategy?: string;
  mode?: Mode;
  remat?: Remat;
  /** --remat was given on the command line (not the default). */
  rematGiven?: boolean;
  precision?: 'mixed' | 'bf16';
  context?: number;
  tokens?: string;
  overlap?: boolean;
  matmulEfficiency?: number;
  dtype?: 'f32' | 'bf16';
  /** --inline-layers: print every layer in place instead of one function per repeated layer. */
  inlineLayers?: boolean;
  output?: string;
}

const fraction = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new UserError(`option --matmul-efficiency takes a number in (0, 1], got '${v}'`);
  return n;
};

/** The plan options (chip, topology, mesh, strategy, mode …) on a command. */
export function addTpuOptions(cmd: Command, { forCompile = false } = {}): Command {
  const req = forCompile ? '' : ' (required)';
  cmd
    .option('--chip <chip>', `accelerator: ${Object.keys(CHIPS).join(', ')}${forCompile ? ' (--target tpu; default v5p)' : req}`)
    .option('--topology <AxBxC>', 'physical topology, e.g. 8x24x32 (v5p), 16x16 (v5e), 2x16x16 = 2 slices of 16x16 over DCN')
    .addOption(new Option('--chips <n>', 'chip count when no --topology is given (a default torus shape is chosen)').argParser(positiveInt('--chips')))
    .option('--mesh <axes>', "logical mesh, e.g. data=768,model=8 ('-1' = the rest; 'auto' = search and rank plans)")
    .option('--strategy <s>', 'dp, fsdp, tp or a combination (fsdp+tp, dp+tp); default fsdp, or fsdp+tp when the mesh has a model axis')
    .addOption(new Option('--mode <mode>', 'what one step is').choices(['forward', 'train', 'decode']).default('forward'))
    .addOption(new Option('--remat <policy>', 'training activation policy').choices([...REMATS]).default('layer-inputs'))
    .addOption(new Option('--precision <p>', 'training state per parameter, as costed and as the bf16 program holds it: mixed = 16 B (bf16 weights/grads + fp32 master, m, v), bf16 = 12 B (no master copy)').choices(['mixed', 'bf16']).default('mixed'))
    .addOption(new Option('--context <n>', 'decode: tokens in the KV cache (default: --seq)').argParser(positiveInt('--context')))
    .option('--tokens <list>', 'training token budgets for the days estimate, e.g. 2e12,8e12,13e12')
    .option('--no-overlap', 'do not overlap FSDP weight gathers with compute')
    .addOption(new Option('--matmul-efficiency <f>', 'achievable fraction of the MXU peak (calibrated default 0.9)').argParser(fraction));
  if (forCompile) {
    cmd.addOption(
      new Option('--dtype <t>', 'float type of the emitted programs: bf16 (what the cost model assumes, and what cost.json is computed on) or f32 (to compare numerics with the CPU backend)')
        .choices(['bf16', 'f32'])
        .default('bf16'),
    );
    cmd.option('--inline-layers', '--target tpu: print every layer in place (default: each repeated layer once, as a function called per layer)');
  }
  return cmd;
}

/** `layer functions: 7 called 228× per device, 7 called 228× whole; ` — what --inline-layers would change; empty when nothing repeats. */
function layerText(l: { partitioned: LayerFunctionCount; whole: LayerFunctionCount } | undefined): string {
  if (!l || !(l.partitioned.functions || l.whole.functions)) return '';
  const one = (c: LayerFunctionCount) => `${c.functions} called ${c.calls}×`;
  return `layer functions: ${one(l.partitioned)} per device, ${one(l.whole)} whole; `;
}

export function toUserError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TpuError || e instanceof ShapeError) throw new UserError(e.message);
    throw e;
  }
}

export function planOptions(o: TpuCliOptions, { defaultChip }: { defaultChip?: string } = {}): PlanOptions {
  const chip = o.chip ?? defaultChip;
  if (!chip) throw new UserError('option --chip is required (one of ' + Object.keys(CHIPS).join(', ') + ')');
  toUserError(() => getChip(chip));
  let tokenBudgets: number[] | undefined;
  if (o.tokens !== undefined) {
    tokenBudgets = o.tokens.split(',').map((s) => {
      // As the report prints them (13T, 1.5T, 250B, 10M, 5K) or as plain numbers (2e12).
      const m = /^\s*([0-9.eE+-]+)\s*([KMBT])?\s*$/i.exec(s);
      const n = m ? Number(m[1]) * ({ K: 1e3, M: 1e6, B: 1e9, T: 1e12 }[(m[2] ?? '').toUpperCase() as 'K'] ?? 1) : NaN;
      if (!(n > 0) || !Number.isFinite(n)) throw new UserError(`option --tokens: '${s}' is not a positive finite number (e.g. --tokens 2e12,8e12 or --tokens 2T,8T)`);
      return n;
    });
  }
  if (o.context !== undefined && o.mode !== 'decode') throw new UserError('option --context only applies to --mode decode');
  if (o.tokens !== undefined && o.mode !== 'train') throw new UserError(`option --tokens (days to train on a token budget) only applies to --mode train (this is --mode ${o.mode ?? 'forward'})`);
  if (o.rematGiven && o.mode !== 'train') throw new UserError(`option --remat only applies to --mode train (this is --mode ${o.mode ?? 'forward'})`);
  return {
    chip,
    ...(o.topology ? { topology: o.topology } : {}),
    ...(o.chips ? { chips: o.chips } : {}),
    ...(o.mesh ? { mesh: o.mesh } : {}),
    ...(o.strategy !== undefined ? { strategy: o.strategy } : {}),
    mode: o.mode ?? 'forward',
    remat: o.remat ?? 'layer-inputs',
    precision: o.precision ?? 'mixed',
    overlap: o.overlap !== false,
    ...(o.matmulEfficiency ? { matmulEfficiency: o.matmulEfficiency } : {}),
    ...(o.context ? { context: o.context } : {}),
    ...(tokenBudgets ? { tokenBudgets } : {}),
  };
}

/**
 * --batch and --seq as the plan counts them. A model with no `seq` dim (an MLP over feature vectors) takes no
 * --seq: each example is one token. For decode, --seq defaults to --context (the positions the caches hold).
 */
function dimsOf(o: TpuCliOptions, file: string): { batch: number; seq: number; bindSeq: boolean } {
  if (o.batch === undefined) throw new UserError('option --batch is required (the global batch, in sequences)');
  const dims = declaredDims(file);
  if (!dims.includes('batch')) {
    throw new UserError(`option --batch: ${file} declares no dim 'batch' (its dims: ${dims.join(', ') || 'none'}); TPU plans size the dims named batch and seq, so name the model's batch dim 'batch' (and its sequence dim 'seq')`);
  }
  if (!dims.includes('seq')) {
    if (o.seq !== undefined) throw new UserError(`option --seq: ${file} declares no dim 'seq' (its dims: ${dims.join(', ') || 'none'}); drop --seq (each example counts as one token)`);
    return { batch: o.batch, seq: 1, bindSeq: false };
  }
  const seq = o.seq ?? (o.mode === 'decode' ? o.context : undefined);
  if (seq === undefined) throw new UserError('option --seq is required (tokens per sequence; for --mode decode, the context length)');
  return { batch: o.batch, seq, bindSeq: true };
}

/** Build the graph a plan needs (decode: one new token per sequence) and run the default pass pipeline, as `compile` does. */
export function planGraph(file: string, o: TpuCliOptions): Graph {
  const { batch, seq, bindSeq } = dimsOf(o, file);
  // (the plan counts batch × seq tokens per step: each must size the program)
  const g = loadModel(file, { ...o, batch, ...(bindSeq ? { seq: o.mode === 'decode' ? 1 : seq } : {}) }, {}, { requireDims: true });
  // Decode builds the graph with seq = 1: the context the caches hold is checked against the model's bound here.
  const max = g.dimBounds?.seq;
  const context = o.context ?? seq;
  if (o.mode === 'decode' && max !== undefined && context > max) {
    throw new UserError(`option ${o.context !== undefined ? '--context' : '--seq'} ${context}: the KV caches would hold more positions than the model's bound seq <= ${max} (${file}'s dim declaration); override that hyperparameter with --hparam to allow it`);
  }
  try {
    return runPipeline(g, resolvePipeline({})).graph;
  } catch (e) {
    if (e instanceof PassError) throw new UserError(e.message);
    throw e;
  }
}

export function runCost(file: string, o: TpuCliOptions): { plan?: PlanResult; ranked?: RankedPlan[] } {
  const po = planOptions(o);
  const dims = dimsOf(o, file);
  if (!po.mesh) throw new UserError("option --mesh is required (e.g. --mesh data=768,model=8, or --mesh auto)");
  const decodeDims = po.mode === 'decode' ? { batch: dims.batch, seq: 1 } : dims;
  const planOpts = po.mode === 'decode' ? { ...po, context: po.context ?? dims.seq } : po;
  if (po.mesh === 'auto') {
    if (!po.topology && !po.chips) throw new UserError('--mesh auto needs --topology or --chips');
    const g = planGraph(file, o);
    return { ranked: toUserError(() => autoPlans(() => g, planOpts, decodeDims)) };
  }
  // Check the mesh before building the graph: mesh errors are cheap and common.
  toUserError(() => {
    const topo = resolveTopology(getChip(po.chip), po);
    parseStrategy(po.strategy, makeMesh(topo, po.mesh!));
  });
  const g = planGraph(file, o);
  return { plan: toUserError(() => evaluatePlan(g, planOpts, decodeDims)) };
}

const TPU_FILES = ['program.mlir', 'program.hlo', 'partitioned.mlir', 'partitioned.hlo', 'cost.json'];

/** What `compile --target tpu` records in its cost.json: the files it wrote (and so may overwrite next time). */
const WRITER = 'lapidary compile --target tpu';

/**
 * The output folder may only hold program files this command wrote: a clash is accepted when the folder's
 * cost.json says `compile --target tpu` wrote that very file (a `cost --json` saved there, or a hand-edited
 * program beside an old plan, is the user's and is refused).
 */
function checkTpuOutputDir(dir: string): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new UserError(`-o '${dir}' exists and is not a directory (--target tpu writes a directory)`);
  const clash = TPU_FILES.filter((f) => fs.existsSync(path.join(dir, f)));
  if (!clash.length) return;
  let written: unknown[] = [];
  try {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'cost.json'), 'utf8'));
    if (c !== null && typeof c === 'object' && c.written_by?.tool === WRITER && Array.isArray(c.written_by.files)) written = c.written_by.files;
    else if (c !== null && typeof c === 'object' && !('written_by' in c) && 'step_time_s' in c && 'mesh_mapping' in c && TPU_FILES.every((f) => fs.existsSync(path.join(dir, f)))) {
      // An output of an older lapidary (before cost.json recorded its files): all five files, written together.
      // A plan saved from `cost --json` next to a program of the user's is not that (not all five are there).
      written = [...TPU_FILES];
      process.stderr.write(`lapidary: replacing an earlier output in '${dir}' (written before cost.json recorded its files)\n`);
    }
  } catch {
    written = [];
  }
  const theirs = clash.filter((f) => !written.includes(f));
  if (theirs.length) {
    throw new UserError(`-o '${dir}' holds ${theirs.join(', ')} that \`compile --target tpu\` did not write (its cost.json does not list them); refusing to overwrite: give a new or empty directory`);
  }
}

/** `compile --target tpu`: write the programs and cost.json into the output directory. */
export function emitTpu(graph: Graph, o: TpuCliOptions, file: string): { json: Record<string, unknown>; lines: string[] } {
  const po = planOptions(o, { defaultChip: 'v5p' });
  const dims = dimsOf(o, file);
  if (!po.mesh || po.mesh === 'auto') throw new UserError("--target tpu needs an explicit --mesh (use 'lapidary cost --mesh auto' to search)");
  const topo = toUserError(() => resolveTopology(getChip(po.chip), po));
  const mesh = toUserError(() => makeMesh(topo, po.mesh!));
  // Decode: the graph was built with seq = 1 (one new token); --seq is the context the KV caches hold.
  const [stepOpts, stepDims] = po.mode === 'decode' ? [{ ...po, context: po.context ?? dims.seq }, { batch: dims.batch, seq: 1 }] : [po, dims];
  const strategy = toUserError(() => chooseStrategy(graph, stepOpts, stepDims, mesh));
  const dir = o.output ?? `${graph.name}${graph.variant ? '-' + graph.variant : ''}-tpu`;
  checkTpuOutputDir(dir);
  const t0 = performance.now();
  const c = toUserError(() => compileTpu(graph, mesh, strategy, stepOpts, stepDims, { emit: true, floatDtype: o.dtype ?? 'bf16', layerFunctions: !o.inlineLayers }));
  const emit_ms = performance.now() - t0;
  const progs = c.programs!;
  const plan = withPlanNotes(c.plan, mesh, strategy);
  ensureDir(dir, '-o');
  const files: Record<(typeof TPU_FILES)[number], string> = {
    'program.mlir': progs.wholeMlir,
    'program.hlo': progs.wholeHlo,
    'partitioned.mlir': progs.partitionedMlir,
    'partitioned.hlo': progs.partitionedHlo,
    'cost.json': JSON.stringify({ ...plan, written_by: { tool: WRITER, files: [...TPU_FILES] } }, null, 1) + '\n',
  };
  for (const [f, text] of Object.entries(files)) writeFileAtomic(path.join(dir, f), text, '-o');
  return {
    json: { out_dir: dir, files: Object.keys(files), emit_ms: Math.round(emit_ms), layer_functions: c.programs?.layerFunctions, step_time_s: plan.step_time_s, mfu: plan.mfu, tokens_per_s_per_chip: plan.tokens_per_s_per_chip, memory_per_chip_bytes: plan.memory_per_chip_bytes, fits: plan.fits },
    lines: [
      `tpu: ${plan.mode === 'train' ? `training step (${c.program.nodes.length} nodes, remat ${plan.remat})` : plan.mode === 'decode' ? `decode step (KV caches of ${stepOpts.context} positions in and out)` : plan.mode}, ${plan.chips} ${plan.chip} chip${plan.chips === 1 ? '' : 's'}, mesh ${plan.mesh}, ${plan.strategy}: wrote ${Object.keys(files).join(', ')} to ${dir}/ (${layerText(c.programs?.layerFunctions)}emitted in ${emit_ms.toFixed(0)} ms)`,
      `tpu: step ${(plan.step_time_s * 1e3).toFixed(2)} ms, MFU ${(100 * plan.mfu).toFixed(1)}%, ${plan.tokens_per_s_per_chip.toFixed(0)} tokens/s/chip, ${(plan.memory_per_chip_bytes / 1e9).toFixed(2)} GB/chip (${plan.fits ? 'fits' : 'does not fit'})`,
      ...(plan.note ? [`tpu: note: ${plan.note}`] : []),
    ],
  };
}
