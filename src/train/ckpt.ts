/**
 * Training checkpoints in Hugging Face layout: `config.json` + `model.safetensors` (F32, checkpoint names,
 * the tied embedding stored once — what `lapidary run` and `transformers` load), plus the training state next
 * to it: `optimizer.safetensors` (`adam.m.<param>`, `adam.v.<param>`) and `trainer_state.json` (step, data,
 * settings), written last so a folder with a trainer_state.json always has the matching weights.
 */
import * as fs from 'fs';
import * as path from 'path';
import { tf, ParamStore } from '../backends/cpu';
import { Graph, concreteShape } from '../ir';
import { writeSafetensors, readSafetensorsHeader, readTensor, TensorData } from '../checkpoint';
import { UserError } from '../errors';
import { OptimizerState } from './trainer';
import { rng } from '../random';
import { ensureDir } from '../fsutil';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainerState {
  step: number;
  batch: number;
  seq: number;
  data: { file: string; hash: string };
  targets?: string;
  loss?: number;
  [k: string]: unknown;
}

function f32(t: tf.Tensor): TensorData {
  return { dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array };
}

export function saveCheckpoint(dir: string, params: ParamStore, config: Record<string, unknown>, state: OptimizerState, trainer: TrainerState): void {
  ensureDir(dir, '--out');
  // remove the state first: a crash between the files below leaves a plain checkpoint, never a mismatched resume
  fs.rmSync(path.join(dir, TRAINER_STATE), { force: true });
  const weights = new Map<string, TensorData>();
  for (const [k, t] of params) weights.set(k, f32(t));
  writeSafetensors(path.join(dir, 'model.safetensors'), weights, { format: 'pt' });
  const cfg = { ...config, dtype: 'float32', torch_dtype: 'float32' };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const opt = new Map<string, TensorData>();
  for (const [k, t] of state.m) opt.set(`adam.m.${k}`, f32(t));
  for (const [k, t] of state.v) opt.set(`adam.v.${k}`, f32(t));
  writeSafetensors(path.join(dir, OPTIMIZER_FILE), opt);
  const tmp = path.join(dir, `.${TRAINER_STATE}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(trainer, null, 2) + '\n');
  fs.renameSync(tmp, path.join(dir, TRAINER_STATE));
}

export function readTrainerState(dir: string): TrainerState | undefined {
  const f = path.join(dir, TRAINER_STATE);
  if (!fs.existsSync(f)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as TrainerState;
  } catch (e) {
    throw new UserError(`${f}: not valid JSON (${(e as Error).message}); delete it to start training from the weights alone`);
  }
}

export function loadOptimizerState(dir: string, params: ParamStore): OptimizerState {
  const f = path.join(dir, OPTIMIZER_FILE);
  const h = readSafetensorsHeader(f);
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  for (const [name, p] of params) {
    for (const [kind, store] of [['m', m], ['v', v]] as const) {
      const info = h.tensors.get(`adam.${kind}.${name}`);
      if (!info) throw new UserError(`${f}: no optimizer state 'adam.${kind}.${name}' (the checkpoint was written for another model?)`);
      if (info.shape.join() !== p.shape.join()) throw new UserError(`${f}: 'adam.${kind}.${name}' has shape [${info.shape.join(', ')}], the param has [${p.shape.join(', ')}]`);
      store.set(name, tf.tensor(readTensor(info), [...info.shape], 'float32'));
    }
  }
  return { m, v };
}

/** Ops that only move or re-type a value: a param's use is judged past them. */
const VIEW_OPS = new Set(['reshape', 'cast', 'broadcast', 'transpose']);

/**
 * Vectors that only ever scale (every use, past reshapes and casts, is a `mul`): a Llama RMSNorm or a LayerNorm
 * weight (`x * w`), which Hugging Face initialises to 1. Everything else — a Gemma norm's `x * (1 + w)`, a bias
 * — starts at 0.
 */
export function scaleVectors(g: Graph): Set<string> {
  const users = new Map<number, Graph['nodes'][number][]>();
  for (const n of g.nodes) for (const i of n.inputs) (users.get(i) ?? users.set(i, []).get(i)!).push(n);
  const onlyScales = (id: number, depth = 0): boolean => {
    const us = users.get(id) ?? [];
    return us.length > 0 && depth < 8 && us.every((u) => u.op === 'mul' || (VIEW_OPS.has(u.op) && onlyScales(u.id, depth + 1)));
  };
  const out = new Set<string>();
  for (const n of g.nodes) if (n.op === 'param' && n.type.shape.length === 1 && onlyScales(n.id)) out.add(String(n.attrs.name));
  return out;
}

/**
 * Fresh weights for every param of the graph: matrices (rank >= 2) ~ N(0, std) (HF's `initializer_range`,
 * default 0.02); vectors 1 where they only scale (`x * w`: Llama RMSNorm, LayerNorm weights), else 0 (biases,
 * Gemma's norm scales, which multiply by 1 + w) — as Hugging Face initialises each.
 */
export function initParams(g: Graph, seed: number, std = 0.02): ParamStore {
  const r = rng(seed);
  const store: ParamStore = new Map();
  const ones = scaleVectors(g);
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const shape = concreteShape(n.type.shape, {});
    const size = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(size);
    if (ones.has(String(n.attrs.name))) data.fill(1);
    else if (shape.length >= 2) {
      for (let i = 0; i < size; i += 2) {
        // Box–Muller
        const u = Math.max(r(), 1e-12);
        const w = r();
        const rad = Math.sqrt(-2 * Math.log(u)) * std;
        data[i] = rad * Math.cos(2 * Math.PI * w);
        if (i + 1 < size) data[i + 1] = rad * Math.sin(2 * Math.PI * w);
      }
    }
    store.set(String(n.attrs.name), tf.tensor(data, shape, 'float32'));
  }
  return store;
}
