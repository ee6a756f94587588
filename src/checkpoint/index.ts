/**
 * Hugging Face checkpoints, backend-neutral: one `model.safetensors` or shards listed by
 * `model.safetensors.index.json`, plus `config.json`. Used by the CLI, training and the TPU tools.
 * `loadParams` (tfjs tensors for the CPU backend) lives in ./load.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CheckpointError, readSafetensorsHeader, TensorInfo } from './safetensors';
import type { Graph } from '../ir/types';

export * from './safetensors';

export interface CheckpointIndex {
  /** The folder (or single file) the user named. */
  readonly source: string;
  /** The .safetensors files, in order. */
  readonly files: readonly string[];
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The model.safetensors.index.json that listed the shards, for a sharded checkpoint. */
  readonly index?: string;
}

export const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Open a checkpoint: a folder with `model.safetensors.index.json` (sharded), `model.safetensors`, or other
 * `*.safetensors` files; or a single .safetensors file. Reads and validates headers only.
 */
export function openCheckpoint(dirOrFile: string): CheckpointIndex {
  let st: fs.Stats;
  try {
    st = fs.statSync(dirOrFile);
  } catch {
    throw new CheckpointError(`checkpoint '${dirOrFile}' does not exist`);
  }
  if (st.isFile()) {
    if (!dirOrFile.endsWith('.safetensors')) throw new CheckpointError(`checkpoint '${dirOrFile}' is a file but not a .safetensors file: give the checkpoint folder (config.json + safetensors) or one .safetensors file`);
    return fromFiles(dirOrFile, [dirOrFile]);
  }
  const index = path.join(dirOrFile, INDEX_FILE);
  if (fs.existsSync(index)) return fromIndex(dirOrFile, index);
  const single = path.join(dirOrFile, 'model.safetensors');
  if (fs.existsSync(single)) return fromFiles(dirOrFile, [single]);
  const all = fs.readdirSync(dirOrFile).filter((f) => f.endsWith('.safetensors')).sort();
  if (!all.length) throw new CheckpointError(`checkpoint folder '${dirOrFile}' has no model.safetensors, ${INDEX_FILE} or other .safetensors file`);
  return fromFiles(dirOrFile, all.map((f) => path.join(dirOrFile, f)));
}

function fromFiles(source: string, files: string[]): CheckpointIndex {
  const tensors = new Map<string, TensorInfo>();
  for (const f of files) {
    for (const [name, info] of readSafetensorsHeader(f).tensors) {
      const prev = tensors.get(name);
      if (prev) throw new CheckpointError(`tensor '${name}' is stored twice: in ${prev.file} and ${f}`);
      tensors.set(name, info);
    }
  }
  return { source, files, tensors };
}

function fromIndex(source: string, indexFile: string): CheckpointIndex {
  let idx: { weight_map?: unknown };
  try {
    idx = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${indexFile}: not JSON (${(e as Error).message})`);
  }
  const wm = idx?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new CheckpointError(`${indexFile}: no "weight_map" object`);
  const byFile = new Map<string, string[]>();
  for (const [name, f] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof f !== 'string' || f.includes('..') || path.isAbsolute(f)) throw new CheckpointError(`${indexFile}: weight_map entry for '${name}' is not a file name in this folder: ${JSON.stringify(f)}`);
    (byFile.get(f) ?? byFile.set(f, []).get(f)!).push(name);
  }
  const tensors = new Map<string, TensorInfo>();
  const files: string[] = [];
  for (const [f, names] of byFile) {
    const file = path.join(path.dirname(indexFile), f);
    if (!fs.existsSync(file)) throw new CheckpointError(`${indexFile}: shard '${f}' (holding ${names.length} tensors, e.g. '${names[0]}') does not exist`);
    files.push(file);
    const h = readSafetensorsHeader(file);
    for (const name of names) {
      const info = h.tensors.get(name);
      if (!info) throw new CheckpointError(`${indexFile}: maps tensor '${name}' to ${f}, but that shard does not hold it`);
      tensors.set(name, info);
    }
  }
  return { source, files, tensors, index: indexFile };
}

/** Read `config.json` from a checkpoint folder (or the folder of a .safetensors file). */
export function readHfConfig(dirOrFile: string): Record<string, unknown> {
  const dir = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isFile() ? path.dirname(dirOrFile) : dirOrFile;
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CheckpointError(`${file}: not found (a Hugging Face checkpoint folder has a config.json with the hyperparameters)`);
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new CheckpointError(`${file}: not a JSON object`);
  return cfg as Record<string, unknown>;
}

/**
 * Hugging Face configs list each layer's attention kind (`layer_types`: "sliding_attention" / "full_attention");
 * the model file computes it from the layer index. On a graph with fused attention (after the passes: its
 * `window` attribute, under a `….layers.<i>.…` scope), list where the two disagree — a checkpoint with another
 * pattern would otherwise run with the wrong masks, silently. Unknown kinds and graphs without fused attention
 * are not checked.
 */
export function layerTypeMismatches(g: Graph, config: Record<string, unknown>): string[] {
  const types = config.layer_types;
  if (!Array.isArray(types)) return [];
  const out: string[] = [];
  for (const n of g.nodes) {
    if (n.op !== 'fused_attention') continue;
    const m = /(?:^|\.)layers\.(\d+)(?:\.|$)/.exec(n.scope);
    if (!m) continue;
    const i = Number(m[1]);
    const kind = types[i];
    const windowed = (n.attrs.window as number) > 0;
    if (kind === 'sliding_attention' && !windowed) out.push(`layer ${i}: config.json layer_types says sliding_attention, the model file gives it global attention`);
    if (kind === 'full_attention' && windowed) out.push(`layer ${i}: config.json layer_types says full_attention, the model file gives it a sliding window of ${n.attrs.window}`);
  }
  return out;
}

/** Edit distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}

export function closestName(name: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bd = Infinity;
  for (const n of names) {
    const d = editDistance(name, n);
    if (d < bd) [best, bd] = [n, d];
  }
  return best;
}
