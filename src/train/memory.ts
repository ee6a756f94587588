/**
 * Static memory accounting for a graph run by an executor that frees each value right after its last use
 * (the CPU backend's policy): the peak of live bytes over the schedule, params and fed inputs excluded
 * (they live outside the run). This is the number rematerialisation changes.
 */
import { Graph, NodeId, DimEnv, concreteShape, BYTES, getOp } from '../ir';

export function peakLiveBytes(g: Graph, env: DimEnv = {}): number {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const needed = new Set<NodeId>();
  const stack = g.outputs.map((o) => o.node);
  while (stack.length) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    stack.push(...byId.get(id)!.inputs);
  }
  const order = g.nodes.filter((n) => needed.has(n.id));
  const last = new Map<NodeId, number>();
  order.forEach((n, i) => n.inputs.forEach((x) => last.set(x, i)));
  const outs = new Set(g.outputs.map((o) => o.node));
  const freeAt: NodeId[][] = order.map(() => []);
  for (const [id, at] of last) if (!outs.has(id)) freeAt[at].push(id);
  const size = (id: NodeId) => {
    const t = byId.get(id)!.type;
    return concreteShape(t.shape, env).reduce((a, d) => a * d, 1) * BYTES[t.dtype];
  };
  let live = 0;
  let peak = 0;
  order.forEach((n, i) => {
    if (!getOp(n.op).source) live += size(n.id);
    peak = Math.max(peak, live);
    for (const x of freeAt[i]) if (!getOp(byId.get(x)!.op).source) live -= size(x);
  });
  return peak;
}
