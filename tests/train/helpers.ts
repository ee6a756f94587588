/** Test helpers for training graphs: run a graph on the CPU backend and read values back. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execute, initCpuBackend, tf, ParamStore } from '../../src/backends/cpu';
import { Graph } from '../../src/ir';
import { mulberry32 } from '../../src/random';

/** A deterministic PRNG (mulberry32). */
export const rng = mulberry32;

export { tf };

export async function useCpu(): Promise<void> {
  await initCpuBackend('cpu');
}


/** Run and read every output back as a Float32Array/Int32Array (tensors disposed). */
export function run(g: Graph, feeds: Record<string, tf.Tensor>, params: ParamStore): Record<string, Float32Array> {
  const r = execute(g, feeds, params);
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r.outputs)) {
    out[k] = t.dataSync() as Float32Array;
    t.dispose();
  }
  for (const t of r.fetched.values()) t.dispose();
  return out;
}

/**
 * A fresh temp folder holding data.json: a learnable token stream (a stride-7 walk over 64 ids with a slow drift,
 * ids 2..65) of `length` tokens. The caller removes the folder (afterAll).
 */
export function makeTokenFolder(prefix: string, length = 3000): { tmp: string; data: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const ids = Array.from({ length }, (_, i) => ((i * 7 + Math.floor(i / 13)) % 64) + 2);
  const data = path.join(tmp, 'data.json');
  fs.writeFileSync(data, JSON.stringify(ids));
  return { tmp, data };
}
