/** `lapidary run`: one forward pass of a model file on a Hugging Face checkpoint, on the CPU backend. */
import { Command, Option } from 'commander';
import { loadModel, addModelOptions, ModelOptions, readJsonFile } from '../load';
import { UserError } from '../errors';
import { addPipelineOptions, checkOutputFile, pipelineFromOptions, PipelineCliOptions } from './compile';
import { Graph } from '../../ir';
import { PassError, resolvePipeline, runPipeline } from '../../passes';
import { execute, ExecError, initCpuBackend, OpProfile, PackedParams, tf, BackendKind } from '../../backends/cpu';
import { checkIdRows, vocabSize, writeLogitsJson } from '../../backends/cpu/session';
import { loadParams, unusedTensorsWarning } from '../../checkpoint/load';
import { layerTypeMismatches, openCheckpoint } from '../../checkpoint';
import * as fs from 'fs';
import * as path from 'path';

interface RunOptions extends ModelOptions, PipelineCliOptions {
  checkpoint: string;
  inputIds: string;
  logitsOut?: string;
  timing?: boolean;
  profile?: boolean;
  tfjsBackend: BackendKind;
}

/**
 * The graph `run` and `generate` execute: the model file (hyperparameters from the checkpoint's config.json
 * unless --config names another) through the pass pipeline that --passes / --no-pass / --plugin choose — by
 * default every built-in pass, so attention runs as fused_attention (band-only on sliding-window layers, K/V
 * heads shared, decodable with a KV cache). `--passes ''` runs the graph as the front end wrote it.
 */
export function loadPipelineGraph(file: string, opts: ModelOptions & PipelineCliOptions, checkpointDir: string): Graph {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { passes } = pipelineFromOptions(opts, () => require('../../index'));
  const configFile = opts.config ?? path.join(checkpointDir, 'config.json');
  const g = loadModel(file, { ...opts, config: configFile });
  let fused: Graph;
  try {
    const r = runPipeline(g, passes);
    fused = r.graph;
    // What passes said with ctx.log (a plugin's checks), as compile shows it.
    for (const line of r.log) process.stderr.write(`lapidary: pass log: ${line}\n`);
  } catch (e) {
    if (e instanceof PassError) throw new UserError(e.message);
    throw e;
  }
  // Which layers have a window is read off the default pipeline's fused attention, whatever pipeline the user chose
  // (--passes '' or --no-pass sliding-window leave no window attribute to compare).
  const defaults = resolvePipeline({});
  const standard = defaults.length === passes.length && defaults.every((p, i) => p.name === passes[i].name);
  let checked = fused;
  if (!standard) {
    try {
      checked = runPipeline(g, defaults).graph;
    } catch {
      checked = fused;
    }
  }
  const bad = layerTypeMismatches(checked, readJsonFile(configFile, 'config') as Record<string, unknown>);
  if (bad.length) {
    throw new UserError(`${configFile} and ${file} disagree on which layers use a sliding window (the checkpoint would run with the wrong attention masks):\n  ${bad.slice(0, 5).join('\n  ')}${bad.length > 5 ? `\n  … ${bad.length - 5} more` : ''}`);
  }
  return fused;
}

/**
 * A seed option: a 32-bit integer in digits, which the generators of src/random.ts tell apart. Larger values
 * (1e30, 2**32) were accepted and silently aliased to other seeds (1e30 sampled exactly as seed 0).
 */
export function seedArg(option: string): (v: string) => number {
  return (v: string) => {
    const n = /^\s*-?[0-9]+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < -2147483648 || n > 2147483647) throw new UserError(`option ${option} takes a 32-bit integer (-2147483648 … 2147483647), got '${v}'`);
    return n;
  };
}

export function tfjsBackendOption(): Option {
  return new Option('--tfjs-backend <kind>', 'tfjs kernels: wasm (SIMD) or cpu (plain JS)').choices(['wasm', 'cpu']).default('wasm');
}

/** Run `fn`, turning the backend's input errors into user errors (message, exit 1, no stack trace). */
export async function asUserErrors<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ExecError) throw new UserError(e.message);
    throw e;
  }
}

/** The folder of a checkpoint given as a folder or as one .safetensors file. */
export function checkpointDir(ck: string): string {
  return fs.existsSync(ck) && fs.statSync(ck).isFile() ? path.dirname(ck) : ck;
}

export function printProfile(prof: OpProfile): void {
  const total = [...prof.values()].reduce((s, e) => s + e.ms, 0);
  const rows = [...prof.entries()].sort((a, b) => b[1].ms - a[1].ms);
  process.stderr.write(`op              calls      ms     share\n`);
  for (const [op, e] of rows) process.stderr.write(`${op.padEnd(14)} ${String(e.calls).padStart(6)} ${e.ms.toFixed(1).padStart(8)} ${((100 * e.ms) / total).toFixed(1).padStart(7)}%\n`);
}

export function register(program: Command): void {
  addModelOptions(
    addPipelineOptions(
      program
        .command('run')
        .description('run a forward pass on a Hugging Face checkpoint (CPU, tfjs) and print or save the logits')
        .argument('<file>', 'model file')
        .requiredOption('--checkpoint <dir>', 'checkpoint folder (config.json + model.safetensors or a sharded index)')
        .requiredOption('--input-ids <ids.json>', 'token ids: [[id, ...], ...], a batch of equal-length rows')
        .option('--logits-out <out.json>', 'write {"logits": [B][T][V]}')
        .option('--timing', 'print {"load_ms", "forward_ms", "tokens_per_s"} as one JSON line')
        .option('--profile', 'print time per op kind to stderr')
        .addOption(tfjsBackendOption()),
    ),
    { dims: false },
  ).action((file: string, opts: RunOptions) =>
    asUserErrors(async () => {
      // Before any work: a missing folder or a directory is the user's mistake, found now, not after the forward.
      if (opts.logitsOut) checkOutputFile(opts.logitsOut, [file, opts.inputIds], '--logits-out');
      const t0 = performance.now();
      await initCpuBackend(opts.tfjsBackend);
      const ck = openCheckpoint(opts.checkpoint);
      const g = loadPipelineGraph(file, opts, checkpointDir(opts.checkpoint));
      const rows = checkIdRows(readJsonFile(opts.inputIds, 'input ids'), opts.inputIds, vocabSize(g));
      process.stderr.write(unusedTensorsWarning(g, ck));
      const params = loadParams(g, ck);
      const load_ms = performance.now() - t0;
      const ids = tf.tensor2d(rows, undefined, 'int32');
      const prof: OpProfile | undefined = opts.profile ? new Map() : undefined;
      const t1 = performance.now();
      const packed = new PackedParams();
      const r = execute(g, { input_ids: ids }, params, { profile: prof, packed });
      const out = r.outputs.logits ?? Object.values(r.outputs)[0];
      const data = out.dataSync() as Float32Array; // forces the computation
      const forward_ms = performance.now() - t1;
      const shape = out.shape;
      ids.dispose();
      Object.values(r.outputs).forEach((t) => t.dispose());
      packed.dispose();
      params.forEach((t) => t.dispose());
      if (prof) printProfile(prof);
      if (opts.logitsOut) {
        if (shape.length !== 3) throw new UserError(`--logits-out needs logits of rank 3 [B, T, V], the model gives [${shape.join(', ')}]`);
        writeLogitsJson(opts.logitsOut, data, shape);
      }
      if (opts.timing) {
        const tokens = rows.length * rows[0].length;
        process.stdout.write(JSON.stringify({ load_ms: round(load_ms), forward_ms: round(forward_ms), tokens_per_s: round((tokens / forward_ms) * 1000) }) + '\n');
      } else if (!opts.logitsOut) {
        const V = shape[shape.length - 1];
        const top: number[][] = [];
        for (let b = 0; b < rows.length; b++) {
          top.push([]);
          for (let t = 0; t < rows[0].length; t++) {
            const o = (b * rows[0].length + t) * V;
            let best = 0;
            for (let v = 1; v < V; v++) if (data[o + v] > data[o + best]) best = v;
            top[b].push(best);
          }
        }
        process.stdout.write(`logits f32[${shape.join(', ')}]; most likely next id at each position:\n${top.map((r) => r.join(' ')).join('\n')}\n`);
      }
    }),
  );
}

const round = (x: number) => Math.round(x * 10) / 10;
