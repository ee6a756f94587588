/**
 * Which values of a bf16 program stay f32. `nodeType` in program.ts applies it; the segment replay and the
 * whole program's layer repeats compare it, so a layer is never reused with another precision.
 */
import { Graph } from '../../ir/types';
import { isFloat } from '../../ir/shape';
import { getOp } from '../../ir/op';
import { OPTIMIZER_SCOPE } from '../../train/optimizer';

const f32Nodes = new WeakMap<Graph, Uint8Array>();
/**
 * The float nodes that stay f32 when a program's floats are bf16 (by node id; memoised per graph):
 * - **Index arithmetic**: values computed only from integer inputs, iotas and constants — RoPE's angles
 *   (position × inverse frequency) and their sines and cosines, masks. bf16 holds integers exactly only up to 256,
 *   and its 8-bit mantissa would turn position 8192 × frequency into an angle off by tens of radians; these tables
 *   are made in f32 (as MaxText and Hugging Face make them) and rounded once where they meet bf16 activations.
 * - **The optimizer** of a training step, as MaxText keeps it: the update reads the Adam moments (and, with
 *   `--precision mixed`, the fp32 master weights `master.<param>`) in f32, converts each bf16 gradient once it
 *   is summed, and writes f32 state back; the param's next value (the output named like the param, a cast — see
 *   `appendAdamW`'s `paramUpdate`) is bf16 for the next forward. So the program holds what the cost model
 *   counts: bf16 weights and gradients, fp32 moments and master weights.
 */
export function f32NodesOf(g: Graph): Uint8Array {
  let r = f32Nodes.get(g);
  if (!r) {
    r = new Uint8Array(g.nextId);
    // index[id]: the value depends on no float input or parameter (nodes are in topological order)
    const index = new Uint8Array(g.nextId);
    const params = new Set<string>();
    for (const n of g.nodes) {
      if (n.op === 'param') params.add(String(n.attrs.name));
      if (n.op === 'constant' || n.op === 'iota' || (n.op === 'input' && !isFloat(n.type.dtype))) index[n.id] = 1;
      else if (!getOp(n.op).source && n.inputs.length && n.inputs.every((i) => index[i])) index[n.id] = 1;
      if ((index[n.id] && isFloat(n.type.dtype)) || n.scope === OPTIMIZER_SCOPE || n.scope.startsWith(OPTIMIZER_SCOPE + '.')) r[n.id] = 1;
    }
    for (const out of g.outputs) if (params.has(out.name)) r[out.node] = 0;
    f32Nodes.set(g, r);
  }
  return r;
}
