/**
 * The SPMD partitioner. It implements the IR's `XlaBuilder` over *global* values, so every op's own `xla`
 * lowering drives it unchanged; each value carries a partition spec (which mesh axes split which dims) and
 * possibly a pending partial sum. For every XLA op it picks the output sharding from the operands' (the
 * GSPMD rules: elementwise ops keep shardings, dot_general shards batch/free dims and turns sharded
 * contractions into partial sums, reshape/transpose carry shardings through, reductions over sharded dims
 * become partial sums), reshards operands where they disagree — all-gather, or a free local slice where a
 * replicated value must become sharded — and emits the local (per-device) instructions into an inner
 * `SpmdEmitter`: the StableHLO printer, the HLO printer or the cost recorder.
 */
import { DType } from '../../ir/types';
import { isFloat, numel } from '../../ir/shape';
import { DotDims, GatherDims, XlaBinary, XlaBuilder, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { Mesh, Spec, axisSize, axisStrides, iotaReplicaGroups, replicaGroups } from './mesh';
import { ReplicaGroupSet, SpmdEmitter, resultType } from './spmd';

export type MutableSpec = string[][];

export interface Partial {
  readonly axes: readonly string[];
  readonly reducer: XlaReducer;
}

/**
 * A global value as the op lowerings see it (ref, global type) with its sharding state. A class with every field
 * set in its constructor, so all values share one hidden class: the partitioner reads these fields hundreds of
 * thousands of times per 27B compile, and object literals spread from varying extras made those reads megamorphic.
 */
export class Info implements XlaValue {
  readonly type: XlaType;
  /** The local value in the inner emitter (undefined for splats and undecided params until first use). */
  local: XlaValue | undefined;
  cache: Map<string, XlaValue> | undefined = undefined;
  /** A splatted constant: any sharding is free. */
  readonly splat: number | undefined;
  /** A broadcast, materialized per use: its source is resharded (cheap), then broadcast locally (fused in XLA). */
  readonly bcast: { readonly src: Info; readonly dims: readonly number[] } | undefined;
  /**
   * Computed from iotas, constants and broadcasts only (a one-hot matrix): any device can make any block of it
   * without communication, so a matmul may split it over an otherwise idle axis.
   */
  readonly generated: boolean;
  /** Parameter name when this is a parameter (collectives on it are weight traffic). */
  readonly param: string | undefined;
  /** A parameter whose sharding the strategy decides at its first use. */
  undecided: boolean;
  /** An undecided program input laid out like this parameter (optimizer state: ZeRO-3 shards it with its parameter). */
  readonly follows: string | undefined;
  /** The input's name (for inputs that follow a parameter or are placed at their first use). */
  readonly input: string | undefined;
  /** An undecided input placed at its first use (a KV cache takes its keys' layout); this spec if nothing decides. */
  readonly fallback: Spec | undefined;
  /** Position in the program signature. */
  readonly argIndex: number | undefined;
  /** This value's own pending sum (a broadcast reads its source's through `partial`). */
  ownPartial: Partial | null;

  constructor(
    readonly ref: string,
    readonly global: XlaType,
    public spec: MutableSpec,
    local: XlaValue | undefined,
    partial: Partial | null,
    extra: Extra,
  ) {
    this.type = global;
    this.local = local;
    this.ownPartial = partial;
    this.splat = extra.splat;
    this.bcast = extra.bcast;
    this.generated = extra.generated ?? false;
    this.param = extra.param;
    this.undecided = extra.undecided ?? false;
    this.follows = extra.follows;
    this.input = extra.input;
    this.fallback = extra.fallback;
    this.argIndex = extra.argIndex;
  }

  /** A pending partial sum; a broadcast's is its source's (which may get all-reduced later). */
  get partial(): Partial | null {
    return this.bcast ? this.bcast.src.partial : this.ownPartial;
  }
  set partial(p: Partial | null) {
    if (!this.bcast) this.ownPartial = p;
  }
}

interface Extra {
  readonly splat?: number;
  readonly bcast?: { readonly src: Info; readonly dims: readonly number[] };
  readonly generated?: boolean;
  readonly param?: string;
  readonly undecided?: boolean;
  readonly follows?: string;
  readonly input?: string;
  readonly fallback?: Spec;
  readonly argIndex?: number;
}

export type CollectiveKind = 'all-gather' | 'all-reduce' | 'reduce-scatter' | 'all-to-all';

export interface CollectiveEvent {
  readonly kind: CollectiveKind;
  readonly axes: readonly string[];
  /** Bytes of the full (gathered / reduced) array per device group, V in the torus formulas. */
  readonly bytes: number;
  /** The collective moves a parameter (an FSDP weight gather), as opposed to activations. */
  readonly param?: string;
}

/** How parameters are laid out: what the strategy presets decide. */
export interface ParamPolicy {
  /** Axes that shard the batch (data parallel / FSDP). */
  readonly dataAxes: readonly string[];
  /** Shard parameters (and so gradients and optimizer state) over the data axes: FSDP / ZeRO-3. */
  readonly fsdp: boolean;
  /** The data axes FSDP shards over (default: all data axes); the others replicate parameters (e.g. across slices). */
  readonly fsdpAxes?: readonly string[];
  /** Megatron-style tensor parallelism over this axis. */
  readonly tpAxis?: string;
}

const specKey = (s: Spec) => s.map((a) => a.join('.')).join('|');
function sameSpec(a: Spec, b: Spec): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i] ?? [];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}
function samePartial(p: Partial | null, q: Partial | null): boolean {
  if (!p || !q || p.reducer !== q.reducer || p.axes.length !== q.axes.length) return false;
  for (let i = 0; i < p.axes.length; i++) if (p.axes[i] !== q.axes[i]) return false;
  return true;
}
const cloneSpec = (s: Spec): MutableSpec => s.map((a) => [...a]);
/** A value with no pending sum, seen as one pending over no axes (see `widening`). */
const NO_AXES: Partial = { axes: [], reducer: 'add' };
/**
 * Specs stored in values are never changed in place (every in-place edit works on a `cloneSpec` copy), so values
 * share them and their per-dim axis lists: ~100k values live for a whole 27B training-step compile, and cloned
 * spec arrays were a large part of what the garbage collector copied. `NONE` (an unsplit dim) is frozen so that
 * an in-place edit of a shared list fails loudly.
 */
const NONE = Object.freeze([]) as unknown as string[];
const unsplit = (rank: number): MutableSpec => {
  const s: MutableSpec = new Array(rank);
  for (let i = 0; i < rank; i++) s[i] = NONE;
  return s;
};
const bytesOf = (t: XlaType) => numel(t.shape) * ({ f32: 4, bf16: 2, f16: 2, i32: 4, i64: 8, bool: 1 } as Record<DType, number>)[t.dtype];

export class Partitioner implements XlaBuilder {
  private n = 0;
  private pid: XlaValue | undefined;
  private readonly indexCache = new Map<string, XlaValue>();
  /** Called with every value the partitioner creates (segment replay records them). */
  onCreate: ((i: Info) => void) | undefined;
  private readonly groupCache = new Map<string, ReplicaGroupSet>();
  /** Decisions for parameters whose sharding was left to their first use. */
  readonly decided = new Map<string, MutableSpec>();
  /** Decisions for inputs that follow a parameter (optimizer state). */
  readonly decidedInputs = new Map<string, MutableSpec>();
  /** Values computed from parameters whose resharded forms are cached (forgotten between forward and backward). */
  private readonly weightInfos: Info[] = [];

  constructor(
    readonly mesh: Mesh,
    /** Where local instructions go (swapped for a recording wrapper while a segment is recorded for replay). */
    public inner: SpmdEmitter,
    readonly policy: ParamPolicy,
    readonly onCollective?: (e: CollectiveEvent) => void,
  ) {}

  // ---------- values ----------

  info(v: XlaValue): Info {
    if (!(v instanceof Info)) throw new Error(`partitioner: unknown value ${v.ref}`);
    return v;
  }

  private mk(global: XlaType, spec: MutableSpec, local: XlaValue | undefined, partial: Partial | null = null, extra: Extra = NO_EXTRA): XlaValue {
    const info = new Info(`%g${this.n++}`, global, spec, local, partial, extra);
    if (extra.param) this.weightInfos.push(info);
    this.onCreate?.(info);
    return info;
  }

  // ---------- for segment replay (replay.ts) ----------

  /** A copy of `src` (a value of a recorded segment) for a replayed one: the same sharding state, mapped fields. */
  cloneInfo(src: Info, bcastSrc: Info | undefined, param: string | undefined): Info {
    const extra: Extra = { splat: src.splat, bcast: src.bcast && { src: bcastSrc!, dims: src.bcast.dims }, generated: src.generated, param, undecided: src.undecided };
    const info = new Info(`%g${this.n++}`, src.global, src.spec, undefined, src.ownPartial, extra);
    if (param !== undefined) this.weightInfos.push(info);
    return info;
  }

  /** The state outside values that a segment's partition reads: forward/backward, and which index values exist. */
  globalKey(): string {
    return `${this.backward ? 'bw' : 'fw'}|${this.pid ? 'pid' : ''}|${[...this.indexCache.keys()].join(';')}`;
  }

  /** Inner values shared by every segment (the partition id and the mesh-axis indices made from it). */
  globalValues(): Set<XlaValue> {
    const s = new Set<XlaValue>(this.indexCache.values());
    if (this.pid) s.add(this.pid);
    return s;
  }

  /** A program argument with a fixed spec (`undefined`: a parameter decided by the policy at first use). */
  arg(global: XlaType, name: string, spec: Spec | undefined, isParam: boolean, index?: number): XlaValue {
    const at = index !== undefined ? { argIndex: index } : {};
    if (spec === undefined) {
      return this.mk(global, global.shape.map(() => []), undefined, null, { param: name, undecided: true, ...at });
    }
    const local = this.inner.arg(this.localType(global, spec), { name, spec, ...(index !== undefined ? { index } : {}) });
    return this.mk(global, cloneSpec(spec), local, null, isParam ? { param: name, ...at } : at);
  }

  /** Place a still-undecided argument by the policy's default (so every argument appears in the program). */
  settleArg(v: XlaValue): void {
    const i = this.info(v);
    if (i.undecided) this.decideDefault(i);
  }

  /**
   * A program input laid out like parameter `param` once that parameter is placed (e.g. Adam moments: ZeRO-3
   * shards optimizer state exactly like its parameter); until then undecided.
   */
  argFollowing(global: XlaType, name: string, param: string, index?: number): XlaValue {
    return this.mk(global, global.shape.map(() => []), undefined, null, { input: name, follows: param, undecided: true, ...(index !== undefined ? { argIndex: index } : {}) });
  }

  /**
   * A program input placed where it is first used (a decode step's KV cache takes the layout of the keys written
   * into it, so the cache never moves between devices); `fallback` if no use decides.
   */
  argAtFirstUse(global: XlaType, name: string, fallback: Spec, index?: number): XlaValue {
    return this.mk(global, global.shape.map(() => []), undefined, null, { input: name, fallback, undecided: true, ...(index !== undefined ? { argIndex: index } : {}) });
  }

  /**
   * Forget the gathered (resharded) forms of parameters: called between the forward and the backward of a
   * training step, so the backward gathers FSDP weights again instead of keeping every layer's gathered
   * weights alive (what JAX/XLA FSDP does).
   */
  forgetGathered(): void {
    for (const i of this.weightInfos) i.cache = undefined;
    this.backward = true;
  }

  /** In the backward of a training step (after `forgetGathered`): partial sums over FSDP axes are gradients. */
  private backward = false;

  spec(v: XlaValue): Spec {
    return this.info(v).spec;
  }

  partialOf(v: XlaValue): Partial | null {
    return this.info(v).partial;
  }

  axisSize(a: string): number {
    return axisSize(this.mesh, a);
  }

  private shards(axes: readonly string[]): number {
    return axes.reduce((p, a) => p * this.axisSize(a), 1);
  }

  localType(global: XlaType, spec: Spec): XlaType {
    return {
      dtype: global.dtype,
      shape: global.shape.map((d, i) => {
        const k = this.shards(spec[i] ?? []);
        if (d % k !== 0) throw new Error(`partitioner: dim ${i} (${d}) of a tensor is not divisible by ${k} shards`);
        return d / k;
      }),
    };
  }

  /** Can `axis` be added (as the minor-most) to dim `d` of `spec` for a global shape? */
  private canAdd(global: XlaType, spec: Spec, d: number, axis: string): boolean {
    // An axis of one device splits nothing: adding it would only bring collectives over one-device groups.
    if (this.axisSize(axis) === 1) return false;
    return global.shape[d] % (this.shards(spec[d]) * this.axisSize(axis)) === 0;
  }

  groups(axes: readonly string[]): ReplicaGroupSet {
    const key = axes.join(',');
    let g = this.groupCache.get(key);
    if (!g) {
      g = { axes: [...axes], groups: replicaGroups(this.mesh, axes), iota: iotaReplicaGroups(this.mesh, axes) };
      this.groupCache.set(key, g);
    }
    return g;
  }

  // ---------- resharding ----------

  /** Decide an undecided parameter's spec from the policy (default placement). */
  private decideDefault(info: Info, prefer?: MutableSpec): void {
    if (!info.undecided) return;
    if (info.fallback !== undefined) return this.placeInput(info, prefer ?? cloneSpec(info.fallback));
    if (info.follows !== undefined) {
      const ps = this.decided.get(info.follows);
      const spec = ps && ps.length === info.global.shape.length ? cloneSpec(ps) : info.global.shape.map(() => [] as string[]);
      if (!ps) this.addFsdp(info.global, spec);
      return this.placeInput(info, spec);
    }
    const spec = prefer ?? info.global.shape.map(() => [] as string[]);
    this.addFsdp(info.global, spec);
    this.fix(info, spec);
  }

  /** Give an undecided program input its spec and its argument in the inner emitter. */
  private placeInput(info: Info, spec: MutableSpec): void {
    info.spec = spec;
    info.undecided = false;
    info.local = this.inner.arg(this.localType(info.global, spec), { name: info.input!, spec, ...(info.argIndex !== undefined ? { index: info.argIndex } : {}) });
    this.decidedInputs.set(info.input!, cloneSpec(spec));
  }

  private addFsdp(global: XlaType, spec: MutableSpec, axes?: readonly string[]): void {
    if (!this.policy.fsdp) return;
    // Shard over as many data axes as divide one dim, largest dim first.
    // Prefer dims no other axis splits (FSDP and tensor parallelism on different dims), then the largest.
    const order = global.shape.map((d, i) => [spec[i].length ? 0 : 1, d / this.shards(spec[i]), i]).sort((a, b) => b[0] - a[0] || b[1] - a[1] || a[2] - b[2]);
    for (const ax of axes ?? this.policy.fsdpAxes ?? this.policy.dataAxes) {
      if (spec.some((s) => s.includes(ax))) continue;
      for (const [, , i] of order) {
        if (this.canAdd(global, spec, i, ax)) {
          spec[i].push(ax);
          break;
        }
      }
    }
  }

  private fix(info: Info, spec: MutableSpec): void {
    info.spec = spec;
    info.undecided = false;
    info.local = this.inner.arg(this.localType(info.global, spec), { name: info.param!, spec, ...(info.argIndex !== undefined ? { index: info.argIndex } : {}) });
    this.decided.set(info.param!, cloneSpec(spec));
  }

  private axisIndex(axes: readonly string[]): XlaValue {
    const key = axes.join(',');
    const hit = this.indexCache.get(key);
    if (hit) return hit;
    const b = this.inner;
    const s32 = { dtype: 'i32' as DType, shape: [] };
    this.pid ??= b.partitionId();
    const strides = axisStrides(this.mesh);
    let acc: XlaValue | undefined;
    let mult = 1;
    for (let j = axes.length - 1; j >= 0; j--) {
      const a = axes[j];
      let c = b.binary('remainder', b.binary('divide', this.pid, b.constant(strides.get(a)!, s32)), b.constant(this.axisSize(a), s32));
      if (mult !== 1) c = b.binary('multiply', c, b.constant(mult, s32));
      acc = acc ? b.binary('add', acc, c) : c;
      mult *= this.axisSize(a);
    }
    this.indexCache.set(key, acc!);
    return acc!;
  }

  /** The local value of `v` laid out as `target` (all-reducing a pending partial unless `keepPartial`). */
  local(v: XlaValue, target: Spec, keepPartial = false): XlaValue {
    const info = this.info(v);
    if (info.undecided) this.decideDefault(info);
    const b = this.inner;
    if (info.splat !== undefined) return b.constant(info.splat, this.localType(info.global, target));
    if (info.bcast) {
      const { src, dims } = info.bcast;
      const key = specKey(target) + (keepPartial ? '+p' : '');
      const hit = info.cache?.get(key);
      if (hit) return hit;
      const srcT = this.info(src).global;
      const srcSpec = dims.map((od, k) => (srcT.shape[k] === info.global.shape[od] ? [...(target[od] ?? [])] : []));
      const x = b.broadcastInDim(this.local(src, srcSpec, keepPartial), this.localType(info.global, target).shape, dims);
      (info.cache ??= new Map()).set(key, x);
      return x;
    }
    if (info.partial && !keepPartial) this.resolvePartial(info, target);
    if (sameSpec(info.spec, target)) return info.local!;
    const key = specKey(target) + (keepPartial ? '+p' : '');
    const hit = info.cache?.get(key);
    if (hit) return hit;
    let x = info.local!;
    if (sameSpec(info.spec, target)) return x;
    const cur = cloneSpec(info.spec);
    // 1. all-gather the (minor) axes of each dim beyond its common prefix with the target.
    for (let d = 0; d < cur.length; d++) {
      const t = target[d] ?? [];
      let k = 0;
      while (k < cur[d].length && k < t.length && cur[d][k] === t[k]) k++;
      if (k < cur[d].length) {
        const axes = cur[d].slice(k);
        const g = this.groups(axes);
        const full = resultType.gathered(x.type, d, g.groups[0].length);
        this.onCollective?.({ kind: 'all-gather', axes, bytes: bytesOf(full), param: info.param });
        x = b.allGather(x, d, g);
        cur[d] = cur[d].slice(0, k);
      }
    }
    // 2. slice locally where the target has more (minor) axes: no communication.
    const extra = cur.map((c, d) => (target[d] ?? []).slice(c.length));
    if (extra.some((e) => e.length)) {
      const s32 = { dtype: 'i32' as DType, shape: [] };
      const sizes = x.type.shape.map((s, d) => s / this.shards(extra[d]));
      const zero = b.constant(0, s32);
      const starts = extra.map((e, d) => (e.length ? b.binary('multiply', this.axisIndex(e), b.constant(sizes[d], s32)) : zero));
      x = b.dynamicSlice(x, starts, sizes);
    }
    (info.cache ??= new Map()).set(key, x);
    return x;
  }

  /**
   * Sum a pending partial. Axes of the sum that `target` splits some dim by (right after that dim's current
   * axes) are reduce-scattered onto that dim — a gradient summed over the data axes lands directly in its
   * FSDP shard (ZeRO), at half the traffic of an all-reduce; the remaining axes are all-reduced.
   */
  private resolvePartial(info: Info, target: Spec): void {
    const p = info.partial!;
    const b = this.inner;
    let x = info.local!;
    let rest = [...p.axes];
    const cur = cloneSpec(info.spec);
    if (p.reducer === 'add') {
      for (let d = 0; d < cur.length && rest.length; d++) {
        const t = target[d] ?? [];
        if (t.length <= cur[d].length || !cur[d].every((a, k) => t[k] === a)) continue;
        const rs: string[] = [];
        for (const a of t.slice(cur[d].length)) {
          if (!rest.includes(a)) break;
          rs.push(a);
        }
        if (!rs.length || x.type.shape[d] % this.shards(rs) !== 0) continue;
        this.onCollective?.({ kind: 'reduce-scatter', axes: rs, bytes: bytesOf(x.type), param: info.param ?? GRADIENT });
        x = b.reduceScatter(x, d, this.groups(rs));
        cur[d].push(...rs);
        rest = rest.filter((a) => !rs.includes(a));
      }
    }
    if (rest.length) {
      const axes = this.mesh.axes.map((a) => a.name).filter((a) => rest.includes(a));
      const dataOnly = axes.every((a) => this.policy.dataAxes.includes(a));
      this.onCollective?.({ kind: 'all-reduce', axes, bytes: bytesOf(x.type), param: info.param ?? (dataOnly && x.type.shape.length ? GRADIENT : undefined) });
      x = b.allReduce(x, this.groups(axes), p.reducer);
    }
    info.local = x;
    info.spec = cur;
    info.partial = null;
    info.cache = undefined;
  }

  /**
   * Before a non-linear op sums a pending partial over FSDP axes (a gradient: dW = xᵀ·dy contracts the
   * data-sharded batch), shard the op's layout over those axes so the sum becomes a reduce-scatter.
   * The dim is chosen the way FSDP places a parameter (`addFsdp`), so the gradient lands in its parameter's shard.
   */
  private settle(vs: readonly XlaValue[], spec: MutableSpec, shape: readonly number[]): MutableSpec {
    if (!this.policy.fsdp || !this.backward) return spec;
    const fsdpAxes = this.policy.fsdpAxes ?? this.policy.dataAxes;
    for (const v of vs) {
      const i = this.info(v);
      const p = i.partial;
      if (!p || p.reducer !== 'add' || i.bcast) continue;
      const axes = p.axes.filter((a) => fsdpAxes.includes(a) && !spec.some((s) => s.includes(a)));
      if (!axes.length || i.global.shape.length !== shape.length) continue;
      const out = cloneSpec(spec);
      this.addFsdp({ dtype: i.global.dtype, shape }, out, axes);
      return out;
    }
    return spec;
  }

  /** Merge operand specs for an elementwise op: keep the first operand's axes, add the others' where free. */
  private merge(vs: readonly XlaValue[]): MutableSpec {
    // Real values lead; broadcasts follow whatever they meet (resharding their source is cheap).
    const infos: Info[] = [];
    for (const v of vs) {
      const i = this.info(v);
      if (i.splat === undefined && !i.undecided && !i.bcast) infos.push(i);
    }
    for (const v of vs) {
      const i = this.info(v);
      if (i.splat === undefined && !i.undecided && i.bcast) infos.push(i);
    }
    if (!infos.length) return unsplit(vs[0].type.shape.length);
    const out = infos[0].spec.slice();
    for (let k = 1; k < infos.length; k++) {
      infos[k].spec.forEach((axes, d) => {
        if (out[d].length || !axes.length) return;
        if (axes.some((a) => out.some((s) => s.includes(a)))) return;
        out[d] = axes;
      });
    }
    return out;
  }

  /** A value computed only from parameters (and constants) is weight traffic when moved, like `1 + w`. */
  private weightOf(vs: readonly XlaValue[]): { param?: string } {
    let param: string | undefined;
    for (const v of vs) {
      const i = this.info(v);
      if (i.splat !== undefined) continue;
      if (!i.param) return NO_EXTRA;
      param ??= i.param;
    }
    return param ? { param } : NO_EXTRA;
  }

  private allSplat(vs: readonly XlaValue[]): number[] | undefined {
    const s = vs.map((v) => this.info(v).splat);
    return s.every((x) => x !== undefined) ? (s as number[]) : undefined;
  }

  // ---------- XlaBuilder ----------

  constant(value: number, type: XlaType): XlaValue {
    return this.mk(type, unsplit(type.shape.length), undefined, null, { splat: value });
  }

  iota(type: XlaType, dim: number): XlaValue {
    return this.mk(type, unsplit(type.shape.length), this.inner.iota(type, dim), null, { generated: true });
  }

  unary(op: XlaUnary, x: XlaValue): XlaValue {
    const i = this.info(x);
    const out = op === 'not' ? { dtype: 'bool' as DType, shape: x.type.shape } : x.type;
    if (i.splat !== undefined) return this.mk(out, unsplit(out.shape.length), this.inner.unary(op, this.local(x, i.spec)));
    const keep = op === 'negate' && !!i.partial;
    let spec = i.undecided ? (this.decideDefault(i), i.spec) : i.spec;
    if (i.partial && !keep) spec = this.settle([x], spec, x.type.shape);
    return this.mk(out, spec, this.inner.unary(op, this.local(x, spec, keep)), keep ? i.partial : null, this.weightOf([x]));
  }

  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    const ia = this.info(a);
    const ib = this.info(b);
    if (ia.undecided) this.decideDefault(ia);
    if (ib.undecided) this.decideDefault(ib);
    let spec = this.merge([a, b]);
    // Linear combinations of partial sums stay partial: (Σa) ± (Σb), (Σa) * c, (Σa) / c.
    let partial: Partial | null = null;
    // Sums pending over different axes (a grad norm adding up the squares of tensors split differently): the one
    // pending over fewer axes is identical across the others, so 1/k of it on each of those k devices is the same sum
    // pending over all of them — one all-reduce at the end instead of one per term. Exact when k is a power of two.
    let widen: { operand: 0 | 1; k: number } | undefined;
    if ((op === 'add' || op === 'subtract') && !samePartial(ia.partial, ib.partial) && isFloat(a.type.dtype)) {
      widen = this.widening(ia, ib) ?? this.widening(ib, ia, 1);
    }
    if (widen) partial = (widen.operand === 0 ? ib : ia).partial;
    else if ((op === 'add' || op === 'subtract') && samePartial(ia.partial, ib.partial) && ia.partial!.reducer === 'add') partial = ia.partial;
    else if ((op === 'multiply' || op === 'divide') && ia.partial?.reducer === 'add' && !ib.partial) partial = ia.partial;
    else if (op === 'multiply' && ib.partial?.reducer === 'add' && !ia.partial) partial = ib.partial;
    // A pending sum over an axis cannot stay pending on a layout split by that same axis (each device would
    // hold a different slice of the addends): sum it first — a reduce-scatter onto the split dim.
    if (partial && spec.some((s) => s.some((x) => partial!.axes.includes(x)))) partial = null;
    if (!partial && (ia.partial || ib.partial)) spec = this.settle([a, b], spec, a.type.shape);
    if (partial === null) widen = undefined;
    let la = this.local(a, spec, !!partial && !!ia.partial);
    let lb = this.local(b, spec, !!partial && !!ib.partial);
    if (widen) {
      const x = widen.operand === 0 ? la : lb;
      const scaled = this.inner.binary('multiply', x, this.inner.constant(1 / widen.k, x.type));
      if (widen.operand === 0) la = scaled;
      else lb = scaled;
    }
    return this.mk(a.type, spec, this.inner.binary(op, la, lb), partial, this.weightOf([a, b]));
  }

  /**
   * `x + y` with both sums pending over different axes: if x's axes are a subset of y's, x is not split over the
   * others and their device count k is a power of two, x can join y's pending sum scaled by 1/k.
   * A scalar x with no pending sum is pending over no axes (identical on every device it is not split over: a
   * replicated gradient's squared sum in the grad norm, already all-reduced): it joins the same way, so the norm's
   * chain of additions stays one pending sum whatever order its terms come in. Only scalars: for a tensor, joining
   * would add a scaling pass and the all-reduce it saves comes later anyway, at the same size.
   */
  private widening(x: Info, y: Info, operand: 0 | 1 = 0): { operand: 0 | 1; k: number } | undefined {
    const px = x.partial ?? (numel(x.global.shape) === 1 ? NO_AXES : null);
    const py = y.partial;
    if (!px || !py || px.reducer !== 'add' || py.reducer !== 'add' || x.bcast || y.bcast) return undefined;
    if (!px.axes.every((a) => py.axes.includes(a))) return undefined;
    const extra = py.axes.filter((a) => !px.axes.includes(a));
    if (!extra.length || x.spec.some((s) => s.some((a) => extra.includes(a)))) return undefined;
    const k = this.shards(extra);
    if ((k & (k - 1)) !== 0) return undefined;
    return { operand, k };
  }

  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    const spec = this.merge([a, b]);
    return this.mk({ dtype: 'bool', shape: a.type.shape }, spec, this.inner.compare(dir, this.local(a, spec), this.local(b, spec)), null, this.generatedOf([a, b]));
  }

  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    const spec = this.merge([a, b, p]);
    return this.mk(a.type, spec, this.inner.select(this.local(p, spec), this.local(a, spec), this.local(b, spec)));
  }

  convert(x: XlaValue, dtype: DType): XlaValue {
    const i = this.info(x);
    const out = resultType.withDtype(x.type, dtype);
    if (i.splat !== undefined) return this.mk(out, unsplit(out.shape.length), undefined, null, { splat: i.splat });
    if (i.undecided) this.decideDefault(i);
    // A pending gradient sum is taken before the convert, in the narrower dtype where it is a bf16 gradient meeting
    // an f32 optimizer — as a reduce-scatter into the parameter's shard, as the non-linear ops settle it.
    const spec = i.partial ? this.settle([x], i.spec, x.type.shape) : i.spec;
    return this.mk(out, spec, this.inner.convert(this.local(x, spec), dtype), null, i.generated ? { generated: true } : this.weightOf([x]));
  }

  /** `{ generated: true }` when every operand is generated, a splat or a broadcast (and one is generated). */
  private generatedOf(vs: readonly XlaValue[]): { generated?: boolean } {
    let any = false;
    for (const v of vs) {
      const i = this.info(v);
      if (i.generated) any = true;
      else if (i.splat === undefined && !i.bcast) return NOT_GENERATED;
    }
    return any ? GENERATED : NOT_GENERATED;
  }

  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    const ia = this.info(a);
    const ib = this.info(b);
    if (ia.undecided && ib.undecided) this.decideDefault(ia);
    if (ia.undecided || ib.undecided) this.decideForDot(ia.undecided ? ia : ib, ia.undecided ? ib : ia, ia.undecided ? 'lhs' : 'rhs', d);
    const roleA = roles(a.type.shape.length, d.lhsBatch, d.lhsContract);
    const roleB = roles(b.type.shape.length, d.rhsBatch, d.rhsContract);
    const ta = cloneSpec(ia.spec);
    const tb = cloneSpec(ib.spec);
    const axes = this.mesh.axes.map((x) => x.name).filter((x) => ta.some((s) => s.includes(x)) || tb.some((s) => s.includes(x)));
    const find = (s: MutableSpec, x: string) => s.findIndex((l) => l.includes(x));
    const drop = (s: MutableSpec, x: string) => {
      const i = find(s, x);
      if (i >= 0) s[i] = s[i].filter((y) => y !== x);
    };
    const big = bytesOf(a.type) >= bytesOf(b.type);
    for (const x of axes) {
      let pa = find(ta, x);
      let pb = find(tb, x);
      if (pa >= 0 && pb >= 0) {
        const ra = roleA[pa];
        const rb = roleB[pb];
        if (ra.kind === rb.kind && ra.kind !== 'free' && ra.k === rb.k) continue;
        // Conflict: an FSDP weight is all-gathered over its data axis; otherwise gather the smaller operand.
        const fsdpAxis = this.policy.dataAxes.includes(x);
        const dropB = fsdpAxis && ib.param && !ia.param ? true : fsdpAxis && ia.param && !ib.param ? false : big;
        if (dropB) drop(tb, x);
        else drop(ta, x);
        pa = find(ta, x);
        pb = find(tb, x);
      }
      const onA = pa >= 0;
      const pf = onA ? pa : pb;
      if (pf < 0) continue;
      const r = (onA ? roleA : roleB)[pf];
      if (r.kind === 'free') continue;
      const [from, to, gTo] = onA ? [ta, tb, b.type] : [tb, ta, a.type];
      const partner = onA ? (r.kind === 'batch' ? d.rhsBatch : d.rhsContract)[r.k] : (r.kind === 'batch' ? d.lhsBatch : d.lhsContract)[r.k];
      // The other operand is split the same way by a free local slice (or, if it cannot be, this one is gathered).
      if (!to.some((s) => s.includes(x)) && this.canAdd(gTo, to, partner, x)) to[partner].push(x);
      else drop(from, x);
    }
    // A generated operand (a one-hot matrix: the embedding gradient's segment_sum) is split over the tensor-parallel
    // axis when neither operand uses it: a free local slice, and the product shrinks by that factor (its result
    // lands split over the vocabulary, as the vocabulary-parallel table is).
    const t = this.policy.tpAxis;
    if (t && !ta.some((s) => s.includes(t)) && !tb.some((s) => s.includes(t))) {
      for (const [info, spec, role, type] of [[ia, ta, roleA, a.type], [ib, tb, roleB, b.type]] as const) {
        if (!info.generated) continue;
        const f = role.findIndex((r, k) => r.kind === 'free' && this.canAdd(type, spec, k, t));
        if (f >= 0) {
          spec[f].push(t);
          break;
        }
      }
    }
    // Paired dims must list their axes in the same order.
    d.lhsBatch.forEach((la, k) => (tb[d.rhsBatch[k]] = [...ta[la]]));
    d.lhsContract.forEach((la, k) => (tb[d.rhsContract[k]] = [...ta[la]]));
    const la = this.local(a, ta);
    const lb = this.local(b, tb);
    const outSpec: MutableSpec = [
      ...d.lhsBatch.map((i) => [...ta[i]]),
      ...ta.filter((_, i) => roleA[i].kind === 'free').map((s) => [...s]),
      ...tb.filter((_, i) => roleB[i].kind === 'free').map((s) => [...s]),
    ];
    const pAxes = this.mesh.axes.map((x) => x.name).filter((x) => d.lhsContract.some((i) => ta[i].includes(x)));
    return this.mk(resultType.dot(a.type, b.type, d), outSpec, this.inner.dot(la, lb, d), pAxes.length ? { axes: pAxes, reducer: 'add' } : null);
  }

  /** Tensor-parallel placement of a weight at its first matmul (Megatron column/row), then FSDP. */
  private decideForDot(p: Info, other: Info, side: 'lhs' | 'rhs', d: DotDims): void {
    const spec: MutableSpec = p.global.shape.map(() => []);
    const t = this.policy.tpAxis;
    if (t) {
      const rp = roles(p.global.shape.length, side === 'lhs' ? d.lhsBatch : d.rhsBatch, side === 'lhs' ? d.lhsContract : d.rhsContract);
      const ro = roles(other.global.shape.length, side === 'lhs' ? d.rhsBatch : d.lhsBatch, side === 'lhs' ? d.rhsContract : d.lhsContract);
      const oi = other.spec.findIndex((s) => s.includes(t));
      const contractP = rp.findIndex((r) => r.kind === 'contract');
      const freeP = rp.findIndex((r) => r.kind === 'free');
      if (oi >= 0 && ro[oi].kind === 'contract') {
        // The activation arrives split over t along the contraction: row-parallel.
        const k = ro[oi].k;
        const pi = rp.findIndex((r) => r.kind === 'contract' && r.k === k);
        if (pi >= 0 && this.canAdd(p.global, spec, pi, t)) spec[pi].push(t);
      } else if (oi < 0 || ro[oi].kind !== 'free') {
        if (freeP >= 0 && this.canAdd(p.global, spec, freeP, t)) spec[freeP].push(t);
        else if (contractP >= 0 && this.canAdd(p.global, spec, contractP, t)) spec[contractP].push(t);
      }
    }
    this.addFsdp(p.global, spec);
    this.fix(p, spec);
  }

  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue {
    const i = this.info(x);
    if (i.undecided) this.decideDefault(i);
    const keepIn = reducer === 'add' && i.partial?.reducer === 'add';
    const spec = i.spec;
    const lx = this.local(x, spec, keepIn);
    const r = this.inner.reduce(lx, dims, reducer);
    const red = this.mesh.axes.map((a) => a.name).filter((a) => dims.some((dd) => spec[dd].includes(a)));
    const outSpec = spec.filter((_, k) => !dims.includes(k));
    const out = resultType.reduce(x.type, dims);
    if (!red.length) return this.mk(out, outSpec, r, keepIn ? i.partial : null);
    if (reducer === 'add') {
      const axes = this.mesh.axes.map((a) => a.name).filter((a) => red.includes(a) || (keepIn && i.partial!.axes.includes(a)));
      return this.mk(out, outSpec, r, { axes, reducer: 'add' });
    }
    this.onCollective?.({ kind: 'all-reduce', axes: red, bytes: bytesOf(r.type) });
    return this.mk(out, outSpec, this.inner.allReduce(r, this.groups(red), reducer));
  }

  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    const i = this.info(x);
    const out = { dtype: x.type.dtype, shape };
    if (i.splat !== undefined) return this.mk(out, unsplit(shape.length), undefined, null, { splat: i.splat });
    if (i.undecided) this.decideDefault(i);
    const ins = x.type.shape;
    const target = i.spec.slice();
    const outSpec: MutableSpec = unsplit(shape.length);
    for (const [I, O] of reshapeGroups(ins, shape)) {
      const sharded = I.filter((k) => target[k].length);
      if (!sharded.length) continue;
      const majorIn = I.find((k) => ins[k] > 1);
      const majorOut = O.find((k) => shape[k] > 1);
      const s = this.shards(target[sharded[0]]);
      if (sharded.length === 1 && sharded[0] === majorIn && majorOut !== undefined && shape[majorOut] % s === 0) {
        outSpec[majorOut] = target[sharded[0]];
      } else {
        for (const k of I) target[k] = NONE;
      }
    }
    const lx = this.local(x, target, !!i.partial);
    return this.mk(out, outSpec, this.inner.reshape(lx, this.localType(out, outSpec).shape), i.partial, this.weightOf([x]));
  }

  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    const i = this.info(x);
    const out = { dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) };
    if (i.splat !== undefined) return this.mk(out, unsplit(out.shape.length), undefined, null, { splat: i.splat });
    if (i.undecided) this.decideDefault(i);
    const spec = i.spec;
    return this.mk(out, perm.map((p) => spec[p]), this.inner.transpose(this.local(x, spec, !!i.partial), perm), i.partial, this.weightOf([x]));
  }

  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    const i = this.info(x);
    const out = { dtype: x.type.dtype, shape };
    if (i.splat !== undefined) return this.mk(out, unsplit(shape.length), undefined, null, { splat: i.splat });
    if (i.undecided) this.decideDefault(i);
    const outSpec: MutableSpec = unsplit(shape.length);
    dims.forEach((od, k) => {
      if (x.type.shape[k] === shape[od]) outSpec[od] = i.spec[k];
    });
    return this.mk(out, outSpec, undefined, i.partial, { bcast: { src: i, dims: [...dims] }, ...this.weightOf([x]) });
  }

  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    const i = this.info(x);
    const out = resultType.slice(x.type, start, limit, strides);
    if (i.splat !== undefined) return this.mk(out, unsplit(out.shape.length), undefined, null, { splat: i.splat });
    if (i.undecided) this.decideDefault(i);
    const spec = i.spec.slice();
    x.type.shape.forEach((d, k) => {
      if (start[k] !== 0 || limit[k] !== d || (strides?.[k] ?? 1) !== 1) spec[k] = NONE;
    });
    const lx = this.local(x, spec, !!i.partial);
    const lt = this.localType(x.type, spec);
    const lim = limit.map((l, k) => (spec[k].length ? lt.shape[k] : l));
    return this.mk(out, spec, this.inner.slice(lx, start, lim, strides), i.partial);
  }

  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    const spec = this.merge(xs);
    spec[dim] = NONE;
    const out = resultType.concat(xs.map((x) => x.type), dim);
    return this.mk(out, spec, this.inner.concatenate(xs.map((x) => this.local(x, spec)), dim));
  }

  gather(table: XlaValue, idx: XlaValue, d: GatherDims, outShape: readonly number[]): XlaValue {
    const it = this.info(table);
    if (it.undecided) {
      // An embedding table: vocabulary-parallel over the TP axis (Megatron), then FSDP.
      const spec: MutableSpec = table.type.shape.map(() => []);
      const t = this.policy.tpAxis;
      if (t) {
        if (this.canAdd(table.type, spec, 0, t)) spec[0].push(t);
        else if (table.type.shape.length > 1 && this.canAdd(table.type, spec, 1, t)) spec[1].push(t);
      }
      this.addFsdp(table.type, spec);
      this.fix(it, spec);
    }
    const ii = this.info(idx);
    const ri = idx.type.shape.length;
    const out = { dtype: table.type.dtype, shape: outShape };
    const simple =
      d.collapsedSliceDims.length === 1 && d.collapsedSliceDims[0] === 0 && d.startIndexMap.length === 1 && d.startIndexMap[0] === 0 &&
      d.indexVectorDim === ri && d.offsetDims.every((o, k) => o === ri + k) && d.sliceSizes.slice(1).every((s, k) => s === table.type.shape[k + 1]);
    if (!simple) {
      const rt = table.type.shape.map(() => []);
      const rIdx = idx.type.shape.map(() => []);
      return this.mk(out, outShape.map(() => []), this.inner.gather(this.local(table, rt), this.local(idx, rIdx), d, outShape));
    }
    const ts = cloneSpec(it.spec);
    const is = cloneSpec(ii.spec);
    // An axis may split the indices or the table, not both: a data (FSDP) axis stays on the indices (the table
    // is all-gathered over it), a tensor-parallel axis stays on the table.
    const onIdx = new Set(is.flat());
    for (let k = 0; k < ts.length; k++) ts[k] = ts[k].filter((a) => !(onIdx.has(a) && this.policy.dataAxes.includes(a)));
    for (let k = 0; k < is.length; k++) is[k] = is[k].filter((a) => !ts.some((s) => s.includes(a)));
    const lt = this.local(table, ts);
    const li = this.local(idx, is);
    const rows = lt.type.shape[0];
    const sizes = [1, ...lt.type.shape.slice(1)];
    const localOut = [...li.type.shape, ...lt.type.shape.slice(1)];
    const outSpec: MutableSpec = [...is.map((s) => [...s]), ...ts.slice(1).map((s) => [...s])];
    const b = this.inner;
    if (!ts[0].length) return this.mk(out, outSpec, b.gather(lt, li, { ...d, sliceSizes: sizes }, localOut));
    // Rows split over ts[0]: each device gathers the rows it holds, zeros elsewhere, so the result is a partial sum.
    const it32 = li.type;
    const sc = (v: number) => b.constant(v, { dtype: it32.dtype, shape: [] });
    const bc = (v: XlaValue) => b.broadcastInDim(v, it32.shape, []);
    const offset = b.binary('multiply', b.convert(this.axisIndex(ts[0]), it32.dtype), sc(rows));
    const rel = b.binary('subtract', li, bc(offset));
    const inRange = b.binary('and', b.compare('GE', rel, bc(sc(0))), b.compare('LT', rel, bc(sc(rows))));
    const safe = b.select(inRange, rel, bc(sc(0)));
    const g = b.gather(lt, safe, { ...d, sliceSizes: sizes }, localOut);
    const mask = b.broadcastInDim(inRange, localOut, [...Array(ri).keys()]);
    const zero = b.constant(0, { dtype: table.type.dtype, shape: localOut });
    return this.mk(out, outSpec, b.select(mask, g, zero), { axes: [...ts[0]], reducer: 'add' });
  }

  /**
   * dynamic_update_slice keeps the operand's sharding on the dims the update covers whole (there every device
   * writes its own block: XLA clamps those starts to 0); a dim written partially — at a position known only at
   * run time — is unsplit. An operand still undecided (a KV cache) takes the update's layout there.
   */
  dynamicUpdateSlice(x: XlaValue, u: XlaValue, starts: readonly XlaValue[]): XlaValue {
    const ix = this.info(x);
    const iu = this.info(u);
    const whole = x.type.shape.map((d, k) => u.type.shape[k] === d);
    if (iu.undecided) this.decideDefault(iu);
    if (ix.undecided) this.decideDefault(ix, iu.splat !== undefined ? undefined : iu.spec.map((s, k) => (whole[k] ? [...s] : [])));
    const spec = this.merge([x, u]);
    for (let k = 0; k < spec.length; k++) if (!whole[k]) spec[k] = NONE;
    const lx = this.local(x, spec);
    const lu = this.local(u, spec);
    return this.mk(x.type, spec, this.inner.dynamicUpdateSlice(lx, lu, starts.map((s) => this.local(s, []))));
  }
}

const NO_EXTRA: { param?: string } = Object.freeze({});
const GENERATED: { generated?: boolean } = Object.freeze({ generated: true });
const NOT_GENERATED: { generated?: boolean } = Object.freeze({});

/** The `param` of collectives that sum gradients over the data axes (weight traffic, overlappable). */
export const GRADIENT = '(gradients)';

interface Role {
  readonly kind: 'batch' | 'contract' | 'free';
  readonly k: number;
}

function roles(rank: number, batch: readonly number[], contract: readonly number[]): Role[] {
  let f = 0;
  return [...Array(rank).keys()].map((i) => {
    const b = batch.indexOf(i);
    if (b >= 0) return { kind: 'batch', k: b };
    const c = contract.indexOf(i);
    if (c >= 0) return { kind: 'contract', k: c };
    return { kind: 'free', k: f++ };
  });
}

/** Groups of input and output dims of a reshape whose products match (row-major). */
export function reshapeGroups(ins: readonly number[], outs: readonly number[]): [number[], number[]][] {
  const groups: [number[], number[]][] = [];
  let i = 0;
  let j = 0;
  while (i < ins.length || j < outs.length) {
    const I: number[] = [];
    const O: number[] = [];
    let pi = 1;
    let po = 1;
    if (i < ins.length) pi *= ins[I[I.push(i++) - 1]];
    if (j < outs.length) po *= outs[O[O.push(j++) - 1]];
    while (pi !== po) {
      if (pi < po && i < ins.length) pi *= ins[I[I.push(i++) - 1]];
      else if (j < outs.length) po *= outs[O[O.push(j++) - 1]];
      else break;
    }
    // Trailing size-1 dims join the last group.
    while (i < ins.length && ins[i] === 1 && (j >= outs.length || outs[j] !== 1)) I.push(i++);
    while (j < outs.length && outs[j] === 1 && (i >= ins.length || ins[i] !== 1)) O.push(j++);
    groups.push([I, O]);
  }
  return groups;
}
