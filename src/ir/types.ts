/**
 * The graph IR: a typed dataflow graph of single-output nodes in topological order.
 * Graphs are immutable (frozen by immer); every update goes through `produce`, and a pass that
 * changes nothing returns the very same object.
 */

export type DType = 'f32' | 'bf16' | 'f16' | 'i32' | 'i64' | 'bool';
export const DTYPES: readonly DType[] = ['f32', 'bf16', 'f16', 'i32', 'i64', 'bool'];

/** A dimension: a number, or the name of a symbolic dimension (`batch`, `seq`). */
export type Dim = number | string;
export type Shape = readonly Dim[];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export type AttrValue = number | string | boolean | null | readonly AttrValue[] | { readonly [k: string]: AttrValue };
export type Attrs = { readonly [k: string]: AttrValue };

/** Where a node came from in a model file. */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type NodeId = number;

export interface Node {
  readonly id: NodeId;
  readonly op: string;
  readonly inputs: readonly NodeId[];
  readonly attrs: Attrs;
  readonly type: TensorType;
  /** Scope path, e.g. `model.layers.3.self_attn`; the same string in weight names, the printer, costs and the visualizer. */
  readonly scope: string;
  readonly loc?: SourceLoc;
}

export interface GraphOutput {
  readonly name: string;
  readonly node: NodeId;
}

export interface Graph {
  readonly name: string;
  /** Topologically ordered: every input of a node is defined earlier. */
  readonly nodes: readonly Node[];
  readonly outputs: readonly GraphOutput[];
  /** Results of labelled block calls (`model.layers.3` → node), for hidden-state inspection. */
  readonly taps: { readonly [scope: string]: NodeId };
  /** Symbolic dimensions the graph is generic over. */
  readonly dims: readonly string[];
  /** Hyperparameters the graph was built with (after variant and config overrides). */
  readonly hparams: { readonly [name: string]: number | boolean | string };
  readonly variant?: string;
  /** Largest sizes the model file allows for dims (`dim seq <= max_pos`), checked wherever a dim gets a size. */
  readonly dimBounds?: { readonly [dim: string]: number };
  readonly nextId: NodeId;
}
