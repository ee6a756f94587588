/**
 * The data the visualizer page reads: one JSON document embedded in the HTML (or served by `--serve`).
 * Shared by the Node side (which builds it from graphs) and the browser client (which renders it); types only.
 *
 * Compact for large graphs: step 0 carries every node, each later pipeline step carries only a delta (nodes
 * added or changed, ids removed). Scopes are interned in a table.
 */

export const VIZ_FORMAT = 'lapidary-viz';
export const VIZ_VERSION = 1;

export type AttrJson = number | string | boolean | null | readonly AttrJson[] | { readonly [k: string]: AttrJson };

/** One IR node as the page sees it. */
export interface VizNode {
  /** Node id (`%id` in the printer). */
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  /** Index into VizData.scopes. */
  readonly scope: number;
  /** Printed type, e.g. `f32[batch, seq, 4608]`. */
  readonly type: string;
  /** Attributes (without the dtype/shape of sources, which `type` shows). */
  readonly attrs?: { readonly [k: string]: AttrJson };
  /** Checkpoint name of a param (or the name of an input). */
  readonly name?: string;
  /** Model file location `file:line:col`. */
  readonly loc?: string;
  /** Values of VizData.metrics, in order (null where unknown). */
  readonly m?: readonly (number | null)[];
  /** Sharding of the node's output (HLO sharding text), when a mesh was given. */
  readonly sharding?: string;
}

export interface VizRuleHit {
  readonly rule: string;
  /** Ids of nodes this rule application created. */
  readonly created: readonly number[];
  /** Ids of nodes it replaced. */
  readonly replaced: readonly number[];
}

/** A pipeline step: the graph after one pass, as a delta from the previous step. */
export interface VizStep {
  readonly name: string;
  /** Nodes new or changed since the previous step (all nodes for step 0), in topological order of this step. */
  readonly upsert: readonly VizNode[];
  /** Ids gone since the previous step. */
  readonly remove: readonly number[];
  /** Every node id of this step, in topological order. */
  readonly order: readonly number[];
  readonly outputs: readonly { readonly name: string; readonly node: number }[];
  /** Rewrite trace of the pass (which rule created/replaced which nodes). */
  readonly trace?: readonly VizRuleHit[];
}

export interface VizMetric {
  readonly key: string;
  readonly label: string;
  /** How to print a value: 'count' (1.2 G), 'bytes' (1.2 GB), 'seconds' (1.2 ms), 'ratio'. */
  readonly unit: 'count' | 'bytes' | 'seconds' | 'ratio';
  /** Whether a group shows the sum of its nodes' values. */
  readonly additive: boolean;
}

export interface VizData {
  readonly format: typeof VIZ_FORMAT;
  readonly version: typeof VIZ_VERSION;
  readonly title: string;
  /** Facts about the model shown in the header: file, variant, bound dims, hyperparameters. */
  readonly info: { readonly [k: string]: string };
  readonly scopes: readonly string[];
  /** The ops that occur, from the op registry: one-line doc, and whether it stands for outside data (input, param). */
  readonly ops: { readonly [op: string]: { readonly doc: string; readonly source?: boolean } };
  readonly metrics: readonly VizMetric[];
  /** What the metrics assume (e.g. `batch=1, seq=4096 on TPU v5e`). */
  readonly metricNote?: string;
  readonly steps: readonly VizStep[];
  /** Served by `lapidary viz --serve`: the page listens for reloads. */
  readonly live?: boolean;
}
