/** Test helpers for training graphs: run a graph on the CPU backend and read values back. */
import { execute, initCpuBackend, tf, ParamStore } from '../../src/backends/cpu';
import { Graph } from '../../src/ir';

export { tf };

export async function useCpu(): Promise<void> {
  await initCpuBackend('cpu');
}

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
