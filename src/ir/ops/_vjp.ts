/**
 * Derivative rules for fused ops written as "expand, then differentiate": the rule rebuilds the op's
 * computation from primitive ops in the backward graph (recomputing, as flash-attention's backward does,
 * instead of storing intermediates) and pulls the cotangent back through the primitives' own rules.
 */
import type { GraphBuilder } from '../builder';
import { getOp } from '../op';
import { isFloat } from '../shape';
import { NodeId } from '../types';

/**
 * Build `expand(inputs)` in `g` and return the cotangent of each of `inputs` for output cotangent `dy`
 * (null where none flows). Only nodes created by `expand` are differentiated through.
 */
export function vjpByExpansion(g: GraphBuilder, inputs: readonly NodeId[], dy: NodeId, expand: (ins: readonly NodeId[]) => NodeId): (NodeId | null)[] {
  const start = g.nextId;
  const firstCreated = g.nodes.length;
  const out = expand(inputs);
  const created = g.nodes.slice(firstCreated); // the builder appends: what `expand` made is the tail
  const wanted = new Set(inputs);
  const ct = new Map<NodeId, NodeId>([[out, dy]]);
  const add = (id: NodeId, d: NodeId) => {
    const prev = ct.get(id);
    ct.set(id, prev === undefined ? d : g.op('add', [prev, d]));
  };
  for (let i = created.length - 1; i >= 0; i--) {
    const n = created[i];
    const d = ct.get(n.id);
    if (d === undefined || !isFloat(n.type.dtype)) continue;
    const def = getOp(n.op);
    if (!def.vjp) continue;
    const dxs = def.vjp(g, n, d);
    n.inputs.forEach((x, k) => {
      const dx = dxs[k];
      if (dx !== null && dx !== undefined && (x >= start || wanted.has(x)) && isFloat(g.type(x).dtype)) add(x, dx);
    });
  }
  return inputs.map((x) => ct.get(x) ?? null);
}
