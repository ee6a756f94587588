/** Load the params a graph needs from a checkpoint into tfjs tensors (float32 / int32). */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { SingleBar, Presets } from 'cli-progress';
import { Graph, fmtShape, isFloat } from '../ir';
import { CheckpointIndex, closestName, openCheckpoint } from './index';
import { CheckpointError, TensorInfo, isFloatDType, readTensor } from './safetensors';

/** Tensors of a checkpoint that `g` has no param for (e.g. a layer the config's layer count leaves out). */
export function unusedTensors(g: Graph, ck: CheckpointIndex): string[] {
  const used = new Set(g.nodes.filter((n) => n.op === 'param').map((n) => String(n.attrs.name)));
  return [...ck.tensors.keys()].filter((k) => !used.has(k)).sort();
}

/** The warning a command prints for `unusedTensors` (empty when there are none). */
export function unusedTensorsWarning(g: Graph, ck: CheckpointIndex): string {
  const extra = unusedTensors(g, ck);
  if (!extra.length) return '';
  const shown = extra.slice(0, 5).join(', ') + (extra.length > 5 ? `, … (${extra.length - 5} more)` : '');
  return `lapidary: warning: ${extra.length} tensor${extra.length === 1 ? '' : 's'} of ${ck.source} ${extra.length === 1 ? 'is' : 'are'} not used by the model: ${shown} (does config.json match the checkpoint?)\n`;
}

export interface LoadOptions {
  /** Show a progress bar on stderr: only ever when stderr is a TTY; by default for checkpoints over 64 MB. */
  progress?: boolean;
}

/** What a graph needs: each param's checkpoint tensor, checked by name and shape before any data is read. */
export function resolveParams(g: Graph, ck: CheckpointIndex): { node: Graph['nodes'][number]; info: TensorInfo }[] {
  const out: { node: Graph['nodes'][number]; info: TensorInfo }[] = [];
  const seen = new Set<string>();
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs.name);
    if (seen.has(name)) continue;
    seen.add(name);
    const info = ck.tensors.get(name);
    if (!info) {
      const near = closestName(name, ck.tensors.keys());
      const where = ck.index ? `; ${ck.index} does not list it in its weight_map` : '';
      throw new CheckpointError(`checkpoint ${ck.source} has no tensor '${name}'${near ? ` (closest: '${near}')` : ''}${where}; the model needs it for ${fmtShape(n.type.shape)}`);
    }
    const want = n.type.shape;
    if (want.length !== info.shape.length || want.some((d, i) => d !== info.shape[i])) {
      throw new CheckpointError(`tensor '${name}' in ${info.file}: wrong shape: expected ${fmtShape(want)} (from the model), found ${fmtShape(info.shape)}`);
    }
    if (isFloat(n.type.dtype) !== isFloatDType(info.dtype)) {
      throw new CheckpointError(`tensor '${name}' in ${info.file}: the model needs ${n.type.dtype}, the checkpoint stores ${info.dtype}`);
    }
    out.push({ node: n, info });
  }
  return out;
}

/**
 * Read only the tensors `g`'s params name (tied embeddings are one param, read once). F32, BF16 and F16
 * become float32. Throws CheckpointError naming the tensor and file on any mismatch.
 */
export function loadParams(g: Graph, checkpoint: string | CheckpointIndex, opts: LoadOptions = {}): Map<string, tf.Tensor> {
  const ck = typeof checkpoint === 'string' ? openCheckpoint(checkpoint) : checkpoint;
  const todo = resolveParams(g, ck).sort((a, b) => (a.info.file === b.info.file ? a.info.begin - b.info.begin : a.info.file < b.info.file ? -1 : 1));
  const total = todo.reduce((s, t) => s + (t.info.end - t.info.begin), 0);
  const show = !!process.stderr.isTTY && (opts.progress ?? total > 64 * 1024 * 1024);
  const bar = show ? new SingleBar({ format: 'loading {bar} {percentage}% | {value}/{total} MB | {name}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : undefined;
  bar?.start(Math.ceil(total / 1e6), 0, { name: '' });
  const store = new Map<string, tf.Tensor>();
  const fds = new Map<string, number>();
  let done = 0;
  try {
    for (const { node, info } of todo) {
      let fd = fds.get(info.file);
      if (fd === undefined) fds.set(info.file, (fd = fs.openSync(info.file, 'r')));
      const data = readTensor(info, fd);
      store.set(String(node.attrs.name), tf.tensor(data, [...info.shape], data instanceof Float32Array ? 'float32' : 'int32'));
      done += info.end - info.begin;
      bar?.update(Math.floor(done / 1e6), { name: info.name });
    }
  } catch (e) {
    for (const t of store.values()) t.dispose();
    throw e;
  } finally {
    for (const fd of fds.values()) fs.closeSync(fd);
    bar?.stop();
  }
  return store;
}
