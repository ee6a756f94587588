/** Read-only queries over a graph, memoised per (immutable) graph object. */
import { Graph, Node, NodeId } from './types';

const maps = new WeakMap<Graph, Map<NodeId, Node>>();
const userMaps = new WeakMap<Graph, Map<NodeId, NodeId[]>>();

export function nodeMap(g: Graph): Map<NodeId, Node> {
  let m = maps.get(g);
  if (!m) {
    m = new Map(g.nodes.map((n) => [n.id, n]));
    maps.set(g, m);
  }
  return m;
}

export function getNode(g: Graph, id: NodeId): Node {
  const n = nodeMap(g).get(id);
  if (!n) throw new Error(`graph ${g.name} has no node %${id}`);
  return n;
}

/** Consumers of each node (a node using x twice is listed twice). */
export function users(g: Graph): Map<NodeId, NodeId[]> {
  let m = userMaps.get(g);
  if (!m) {
    m = new Map(g.nodes.map((n) => [n.id, [] as NodeId[]]));
    for (const n of g.nodes) for (const i of n.inputs) m.get(i)?.push(n.id);
    userMaps.set(g, m);
  }
  return m;
}

export function countOps(g: Graph): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of g.nodes) c[n.op] = (c[n.op] ?? 0) + 1;
  return Object.fromEntries(Object.entries(c).sort(([a], [b]) => a.localeCompare(b)));
}

export function paramNodes(g: Graph): Node[] {
  return g.nodes.filter((n) => n.op === 'param');
}

export function inputNodes(g: Graph): Node[] {
  return g.nodes.filter((n) => n.op === 'input');
}
