/** Graph query helpers for pass writers (re-exported from the package entry). */
import { Graph, Node, NodeId } from '../ir/types';
import { getNode, users } from '../ir/graph';
import { constValue } from './pattern';

export { getNode, nodeMap, users, countOps } from '../ir/graph';
export { constValue } from './pattern';

/** Nodes of one op (or any of several), in graph order. */
export function findNodes(g: Graph, op: string | readonly string[]): Node[] {
  const ops = typeof op === 'string' ? [op] : op;
  return g.nodes.filter((n) => ops.includes(n.op));
}

/** Number of uses of a node: input slots plus graph outputs and taps. */
export function useCount(g: Graph, id: NodeId): number {
  let k = 0;
  for (const u of users(g).get(id) ?? []) void u, k++;
  for (const o of g.outputs) if (o.node === id) k++;
  for (const t of Object.values(g.taps)) if (t === id) k++;
  return k;
}

/** The value of a scalar or splat constant node, or undefined. */
export function scalarOf(g: Graph, id: NodeId): number | undefined {
  return constValue(getNode(g, id));
}

/** Every node reachable backwards from `roots` (inclusive). */
export function ancestors(g: Graph, roots: readonly NodeId[]): Set<NodeId> {
  const seen = new Set<NodeId>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...getNode(g, id).inputs);
  }
  return seen;
}

/** Nodes whose scope is `scope` or lies under it. */
export function inScope(g: Graph, scope: string): Node[] {
  return g.nodes.filter((n) => n.scope === scope || n.scope.startsWith(scope + '.'));
}
