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
  /** How the node is partitioned over the mesh, when one was given (`viz --mesh`). */
  readonly sharding?: VizSharding;
}

/** A collective the partitioner inserted while lowering a node. */
export interface VizCollective {
  readonly kind: string;
  /** Mesh axes it runs over, comma-separated. */
  readonly axes: string;
  /** Bytes of the full (gathered / reduced) array per device group. */
  readonly bytes: number;
  /** Estimated time on the torus. */
  readonly seconds: number;
  /** It moves a weight (an FSDP gather), not activations. */
  readonly weights?: boolean;
}

/** A node's output on the mesh, from the TPU backend's partitioner. */
export interface VizSharding {
  /** Partition spec: the mesh axes splitting each dim, e.g. `[data, -, model]`. */
  readonly spec: string;
  /** HLO sharding attribute, e.g. `{devices=[16,1,4]<=[64]}` or `{replicated}`. */
  readonly hlo: string;
  /** Per-chip type, e.g. `bf16[1, 4096, 1152]`. */
  readonly local: string;
  /** Number of pieces the output is split into (1 = replicated on every chip). */
  readonly ways: number;
  /** A pending partial sum (reduced later), e.g. `add over model`. */
  readonly partial?: string;
  readonly collectives?: readonly VizCollective[];
}

/** Per-chip cost of a node's local (partitioned) instructions: the values of the sharding metrics. */
export interface VizChipCost {
  /** Roofline time with the cost model's conventions. */
  readonly time: number;
  readonly flops: number;
  /** Fusion-aware bytes. */
  readonly bytes: number;
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
  /** The hyperparameters the graph was built with (after variant and config overrides). */
  readonly hparams?: { readonly [name: string]: number | boolean | string };
  readonly scopes: readonly string[];
  /** The ops that occur, from the op registry: one-line doc, and whether it stands for outside data (input, param). */
  readonly ops: { readonly [op: string]: { readonly doc: string; readonly source?: boolean } };
  readonly metrics: readonly VizMetric[];
  /** What the metrics assume (e.g. `batch=1, seq=4096 on TPU v5e`). */
  readonly metricNote?: string;
  /** The mesh the sharding overlay was computed for (`data=16,model=4 on 64 v5p (4x4x4), fsdp+tp`). */
  readonly mesh?: string;
  readonly steps: readonly VizStep[];
  /** Served by `lapidary viz --serve`: the page listens for reloads. */
  readonly live?: boolean;
}
