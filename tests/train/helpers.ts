/** Test helpers for training graphs: run a graph on the CPU backend and read values back. */
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
