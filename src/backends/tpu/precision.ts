/**
 * Which values of a bf16 program stay f32. `nodeType` in program.ts applies it; the segment replay and the
 * whole program's layer repeats compare it, so a layer is never reused with another precision.
 */
import { Graph } from '../../ir/types';
import { nodeMap } from '../../ir/graph';
import { isFloat } from '../../ir/shape';
import { getOp } from '../../ir/op';
import { OPTIMIZER_SCOPE, isOptimizerState } from '../../train/optimizer';
import { TpuError } from './errors';

const f32Nodes = new WeakMap<Graph, Uint8Array>();
/** Ops that place or pick values without computing new ones (their float output is exact where their inputs are). */
const SELECTING = new Set(['scatter_add', 'segment_sum', 'gather', 'take_along_axis', 'compare']);
const isInteger = (g: Graph, id: number) => {
  const d = nodeMap(g).get(id)?.type.dtype;
  return d === 'i32' || d === 'i64';
};
/**
 * The float nodes that stay f32 when a program's floats are bf16 (by node id; memoised per graph):
 * - **Index arithmetic**: values computed by arithmetic only from integer inputs, iotas and constants — RoPE's
 *   inverse frequencies, angles (position × inverse frequency) and their sines and cosines. bf16 holds integers
 *   exactly only up to 256 (near 8000 its values are 32 apart), so a bf16 angle there would be off by up to 16
 *   radians; these tables are made in f32 (as MaxText and Hugging Face make them) and rounded once where they meet
 *   bf16 activations. Masks and one-hots (0/1, selected constants) are exact in bf16 and stay bf16.
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
    // index[id]: the value depends on no float input or parameter (nodes are in topological order);
    // numeric[id]: an index value that bf16 would round — made by arithmetic from integers converted to floats
    // (positions, iotas) or from float tensor constants. A 0/1 mask, a one-hot or a select between constants
    // is exact in bf16 and stays bf16 (a one-hot gradient is [tokens, vocab]: f32 would double it).
    const index = new Uint8Array(g.nextId);
    const numeric = new Uint8Array(g.nextId);
    const params = new Set<string>();
    for (const n of g.nodes) {
      if (n.op === 'param') params.add(String(n.attrs.name));
      if (n.op === 'constant' || n.op === 'iota' || (n.op === 'input' && !isFloat(n.type.dtype))) index[n.id] = 1;
      else if (!getOp(n.op).source && n.inputs.length && n.inputs.every((i) => index[i])) index[n.id] = 1;
      if (index[n.id] && isFloat(n.type.dtype)) {
        if (n.op === 'cast') numeric[n.id] = isInteger(g, n.inputs[0]) ? 1 : numeric[n.inputs[0]];
        else if (n.op === 'constant' || n.op === 'iota') numeric[n.id] = n.type.shape.length > 0 ? 1 : 0;
        else if (!SELECTING.has(n.op) && n.inputs.some((i) => numeric[i])) numeric[n.id] = 1;
      }
      if (numeric[n.id] || n.scope === OPTIMIZER_SCOPE || n.scope.startsWith(OPTIMIZER_SCOPE + '.')) r[n.id] = 1;
    }
    for (const out of g.outputs) if (params.has(out.name)) r[out.node] = 0;
    // The step's state leaves in f32. A param's next value that is also its master's (a pass folded the cast between
    // them, which is the identity in the f32 graph) cannot be both dtypes: refuse rather than emit bf16 state.
    for (const out of g.outputs) {
      if (isOptimizerState(out.name) && !r[out.node]) throw new TpuError(`training step: '${out.name}' is the same value as a bf16 output (was the cast to the weights' dtype folded away by a pass run on the step graph?)`);
    }
    f32Nodes.set(g, r);
  }
  return r;
}
