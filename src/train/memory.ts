/**
 * Static memory accounting for a graph run by an executor that frees each value right after its last use
 * (the CPU backend's policy): the peak of live bytes over the schedule, params and fed inputs excluded
 * (they live outside the run). This is the number rematerialisation changes.
 *
 * A step's outputs (the gradients, or the new params and moments) are as large as the params and live to the
 * end whatever the policy — every trainer holds a gradient per param — so `excludeOutputs` leaves them out:
 * what remains is the transient memory (activations kept for the backward, the loss's vocabulary-sized
 * tensors, backward temporaries). `livePeak` also says where the peak is and what is live there.
 */
import { Graph, Node, NodeId, DimEnv, concreteShape, BYTES, getOp } from '../ir';

export interface LiveBytesOptions {
  /** Do not count the graph's outputs (they are the step's results, param-sized; default false). */
  readonly excludeOutputs?: boolean;
}

export interface LivePeak {
  /** Peak of live bytes. */
  readonly bytes: number;
  /** The node whose evaluation reaches the peak (-1 for an empty schedule). */
  readonly at: NodeId;
  /** The values live at the peak, largest first. */
  readonly live: readonly { readonly node: Node; readonly bytes: number }[];
}

export function livePeak(g: Graph, env: DimEnv = {}, opts: LiveBytesOptions = {}): LivePeak {
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
  const counted = (n: Node) => !getOp(n.op).source && !(opts.excludeOutputs && outs.has(n.id));
  const size = (id: NodeId) => {
    const t = byId.get(id)!.type;
    return concreteShape(t.shape, env).reduce((a, d) => a * d, 1) * BYTES[t.dtype];
  };
  const live = new Set<NodeId>();
  let bytes = 0;
  let peak = 0;
  let at = -1;
  let snapshot: NodeId[] = [];
  order.forEach((n, i) => {
    if (counted(n)) {
      bytes += size(n.id);
      live.add(n.id);
    }
    if (bytes > peak) {
      peak = bytes;
      at = n.id;
      snapshot = [...live];
    }
    for (const x of freeAt[i]) {
      if (live.delete(x)) bytes -= size(x);
    }
  });
  const liveAt = snapshot.map((id) => ({ node: byId.get(id)!, bytes: size(id) })).sort((p, q) => q.bytes - p.bytes);
  return { bytes: peak, at, live: liveAt };
}

export function peakLiveBytes(g: Graph, env: DimEnv = {}, opts: LiveBytesOptions = {}): number {
  return livePeak(g, env, opts).bytes;
}
