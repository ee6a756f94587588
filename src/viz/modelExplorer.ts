/**
 * Export to Google Model Explorer's JSON graph format, so Lapidary graphs open there too:
 * `{label, graphs: [{id, nodes: [{id, label, namespace, attrs, incomingEdges, outputsMetadata}]}]}`, the
 * namespace being the scope with '/' separators (which makes Model Explorer's collapsible groups), and the
 * per-node overlay ("node data") format `{results: {nodeId: {value}}, gradient}`.
 */
import { AttrValue, DimEnv, Graph, fmtShape, getOp, hasOp } from '../ir';
import type { Chip } from './data';
import { metricsFor, nodeMetrics } from './data';

export interface MeKeyValue {
  readonly key: string;
  readonly value: string;
}

export interface MeNode {
  readonly id: string;
  readonly label: string;
  readonly namespace: string;
  readonly attrs: MeKeyValue[];
  readonly incomingEdges: { readonly sourceNodeId: string; readonly sourceNodeOutputId: string; readonly targetNodeInputId: string }[];
  readonly outputsMetadata: { readonly id: string; readonly attrs: MeKeyValue[] }[];
}

export interface MeGraphCollection {
  readonly label: string;
  readonly graphs: { readonly id: string; readonly nodes: MeNode[] }[];
}

function attrText(v: AttrValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function namespaceOf(scope: string): string {
  return scope.split('.').filter(Boolean).join('/');
}

/** One graph (or several, e.g. the pipeline's steps) as a Model Explorer graph collection. */
export function toModelExplorer(graphs: readonly { readonly id: string; readonly graph: Graph }[], label: string): MeGraphCollection {
  return {
    label,
    graphs: graphs.map(({ id, graph }) => ({
      id,
      nodes: graph.nodes.map((n): MeNode => {
        const src = hasOp(n.op) && getOp(n.op).source;
        const attrs: MeKeyValue[] = [];
        for (const [k, v] of Object.entries(n.attrs)) if (!(src && (k === 'dtype' || k === 'shape'))) attrs.push({ key: k, value: attrText(v) });
        if (n.loc) attrs.push({ key: 'source', value: `${n.loc.file}:${n.loc.line}:${n.loc.col}` });
        attrs.push({ key: 'scope', value: n.scope });
        return {
          id: String(n.id),
          label: src && typeof n.attrs.name === 'string' ? `${n.op} ${n.attrs.name}` : n.op,
          namespace: namespaceOf(n.scope),
          attrs,
          incomingEdges: n.inputs.map((s, i) => ({ sourceNodeId: String(s), sourceNodeOutputId: '0', targetNodeInputId: String(i) })),
          outputsMetadata: [
            {
              id: '0',
              attrs: [
                { key: 'shape', value: fmtShape(n.type.shape) },
                { key: 'dtype', value: n.type.dtype },
                { key: 'tensor_name', value: graph.outputs.find((o) => o.node === n.id)?.name ?? `%${n.id}` },
              ],
            },
          ],
        };
      }),
    })),
  };
}

/** A Model Explorer node-data overlay of one cost metric (flops, transcendentals, bytes, intensity, time). */
export function modelExplorerNodeData(graph: Graph, metric: string, env: DimEnv, chip?: Chip): { results: { [id: string]: { value: number } }; gradient: { stop: number; bgColor: string }[] } {
  const metrics = metricsFor(chip);
  const i = metrics.findIndex((m) => m.key === metric);
  if (i < 0) throw new Error(`unknown metric '${metric}' (known: ${metrics.map((m) => m.key).join(', ')})`);
  const results: { [id: string]: { value: number } } = {};
  for (const n of graph.nodes) {
    const v = nodeMetrics(graph, n, env, chip)?.[i];
    if (typeof v === 'number') results[String(n.id)] = { value: v };
  }
  return {
    results,
    gradient: [
      { stop: 0, bgColor: '#ffffcc' },
      { stop: 0.5, bgColor: '#fd8d3c' },
      { stop: 1, bgColor: '#800026' },
    ],
  };
}
