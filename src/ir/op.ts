/**
 * The op registry. Each IR op is defined once (src/ir/ops/<op>.ts) with every facet the compiler needs:
 * its type rule, CPU lowering (tfjs), XLA lowering (StableHLO and HLO text through one builder), cost
 * (XLA HloCostAnalysis conventions) and derivative. Backends, the cost model and autodiff iterate over
 * the registry; none of them switches on op names.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { Attrs, Node, NodeId, TensorType } from './types';
import { DimEnv, ShapeError } from './shape';
import type { XlaBuilder, XlaValue, XlaType } from './xla';
import type { GraphBuilder } from './builder';

export type Tensor = tfc.Tensor;
export type TF = typeof tfc;

/** What a CPU lowering receives besides its inputs. */
export interface CpuContext {
  readonly tf: TF;
  /** Sizes of symbolic dims for this run. */
  readonly env: DimEnv;
  /** Per-run state an op may keep (e.g. the KV cache of a fused attention), keyed by node id. */
  readonly state: Map<NodeId, unknown>;
  /** Present during incremental decoding: the number of positions already in the cache. */
  readonly decode?: { readonly pastLength: number };
  /**
   * Per input of this call: the `cpuPack` layout the operand arrives in (a param re-laid-out once by the
   * executor), or undefined when it arrives as stored.
   */
  readonly layouts?: readonly (string | undefined)[];
}

/**
 * CPU: re-lay-out a param operand once per loaded weights instead of on every call (e.g. matmul stores a
 * [out, in] Linear weight transposed to [in, out], the layout the fast kernel wants).
 */
export interface CpuPack {
  /** The layout this node wants for input `input` when that input is a param (undefined: as stored). */
  layout(input: number, node: Node, inputType: TensorType): string | undefined;
  /** Produce `layout` from the stored tensor. */
  pack(tf: TF, layout: string, t: Tensor): Tensor;
}

export interface Cost {
  /** Floating-point operations (XLA counts elementwise, compare, select and convert as 1 per element). */
  readonly flops: number;
  /** exp, log, tanh, rsqrt, sqrt, sin, cos, logistic, power: 1 per element, and no flop. */
  readonly transcendentals: number;
  /** Bytes accessed: by default all operands plus the output. */
  readonly bytes: number;
}

export interface CostArgs {
  readonly node: Node;
  readonly ins: readonly XlaType[];
  readonly out: XlaType;
}

export interface OpDef<A extends Attrs = Attrs> {
  readonly name: string;
  /** One line for --help, docs and the visualizer. */
  readonly doc: string;
  /** Number of inputs, or 'variadic' (at least one). */
  readonly arity: number | 'variadic';
  /** Attributes the op requires. */
  readonly attrs?: readonly string[];
  /** Type rule: throw ShapeError with a readable message on bad input. */
  infer(inputs: readonly TensorType[], attrs: A): TensorType;
  /** CPU lowering on tfjs. */
  readonly cpu?: (ctx: CpuContext, inputs: readonly Tensor[], node: Node) => Tensor;
  /** CPU: param operands this op wants in another layout, prepared once (see CpuContext.layouts). */
  readonly cpuPack?: CpuPack;
  /** XLA lowering (one builder, two printers: StableHLO and HLO text). */
  readonly xla?: (b: XlaBuilder, inputs: readonly XlaValue[], node: Node, out: XlaType) => XlaValue;
  /** Cost under XLA's HloCostAnalysis conventions; the default is 0 flops and operands + output bytes. */
  readonly cost?: (args: CostArgs) => Partial<Cost>;
  /**
   * Reverse-mode derivative: given the forward node (its inputs live in `g`) and the cotangent `dy` of
   * its output, return a cotangent for each input (null where none flows, e.g. integer inputs).
   */
  readonly vjp?: (g: GraphBuilder, node: Node, dy: NodeId) => readonly (NodeId | null)[];
  /** True for ops without inputs that stand for data supplied from outside (inputs, params). */
  readonly source?: boolean;
  /** Elementwise ops (output element i depends only on input elements i): fusion and sharding use this. */
  readonly elementwise?: boolean;
}

const registry = new Map<string, OpDef<any>>();

export function defineOp<A extends Attrs = Attrs>(def: OpDef<A>): OpDef<A> {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' is defined twice`);
  registry.set(def.name, def);
  return def;
}

export function getOp(name: string): OpDef {
  const d = registry.get(name);
  if (!d) throw new ShapeError(`unknown op '${name}'`);
  return d;
}

export function hasOp(name: string): boolean {
  return registry.has(name);
}

export function allOps(): readonly OpDef[] {
  return [...registry.values()];
}

/** An op that requires no attributes (shared: no empty array per inferred node). */
const NO_ATTRS: readonly string[] = [];

/** Check arity and required attributes, then run the op's type rule. */
export function inferType(op: string, inputs: readonly TensorType[], attrs: Attrs): TensorType {
  const d = getOp(op);
  if (d.arity === 'variadic') {
    if (inputs.length < 1) throw new ShapeError(`${op} takes at least one input`);
  } else if (inputs.length !== d.arity) {
    throw new ShapeError(`${op} takes ${d.arity} input${d.arity === 1 ? '' : 's'}, got ${inputs.length}`);
  }
  for (const a of d.attrs ?? NO_ATTRS) {
    if (!(a in attrs)) throw new ShapeError(`${op} needs attribute '${a}'`);
  }
  return d.infer(inputs, attrs);
}
