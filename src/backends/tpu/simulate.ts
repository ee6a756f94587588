/**
 * An SPMD simulator: an `SpmdEmitter` that *executes* the per-device program the partitioner emits, for every
 * device of a mesh at once, in float64 on this machine — collectives with their real replica groups,
 * `partition_id`, dynamic slices. With one device it runs a whole (unpartitioned) program the same way.
 *
 * It is the exactness check of the partitioner without XLA: run a graph partitioned (per device) and whole
 * (one device), then compare every output — and every intermediate node, reassembled from its shards and
 * pending partial sums (`checkPartition`) — to find the first node where the per-device program goes wrong.
 * Meant for small models (the tiny Gemma 2): plain loops, no vectorisation.
 */
import { DType, Graph, NodeId } from '../../ir/types';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { Mesh, Spec, axisSize, axisStrides } from './mesh';
import { ArgInfo, ReplicaGroupSet, SpmdEmitter, reducerInit, resultType } from './spmd';
import { CollectiveEvent, ParamPolicy, Partitioner } from './partition';
import { PartitionResult, ProgramOptions, emitWholeProgram, partitionGraph, sourceNodes, nodeType, WholeProgramEmitter } from './program';

/** A simulated value: one array per device. */
export interface SimValue extends XlaValue {
  readonly data: readonly Float64Array[];
}

// Module constants, not globals: a global lookup in a hot loop is slow inside a vm context (jest).
const { abs, max, min, floor, trunc } = Math;
const isInt = (d: DType) => d === 'i32' || d === 'i64';
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

/** Calls `f(outIndex, srcOffset)` for every element of `shape`, where srcOffset = Σ idx[d]·srcStrides[d] + base. */
function walk(shape: readonly number[], srcStrides: readonly number[], base: number, f: (o: number, s: number) => void): void {
  const n = size(shape);
  const r = shape.length;
  if (r === 0) {
    f(0, base);
    return;
  }
  const idx = new Array<number>(r).fill(0);
  let s = base;
  for (let o = 0; o < n; o++) {
    f(o, s);
    for (let d = r - 1; d >= 0; d--) {
      idx[d]++;
      s += srcStrides[d];
      if (idx[d] < shape[d]) break;
      s -= srcStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** The block of a global array that device `p` holds under `spec` (the inverse of `hloSharding`'s tiling). */
/** Which block of dim `k` device `p` holds under `spec`, and into how many blocks the dim is cut. */
function blockOf(mesh: Mesh, strides: ReadonlyMap<string, number>, spec: Spec, k: number, p: number): { idx: number; ways: number } {
  let idx = 0;
  let ways = 1;
  for (const a of spec[k] ?? []) {
    const n = axisSize(mesh, a);
    idx = idx * n + (floor(p / strides.get(a)!) % n);
    ways *= n;
  }
  return { idx, ways };
}

export function localBlock(mesh: Mesh, data: ArrayLike<number>, shape: readonly number[], spec: Spec, p: number): { data: Float64Array; shape: number[] } {
  const strides = axisStrides(mesh);
  const start: number[] = [];
  const lshape: number[] = [];
  shape.forEach((d, k) => {
    const { idx, ways } = blockOf(mesh, strides, spec, k, p);
    if (d % ways !== 0) throw new Error(`localBlock: dim ${k} (${d}) does not divide by ${ways}`);
    lshape.push(d / ways);
    start.push(idx * (d / ways));
  });
  const st = stridesOf(shape);
  const out = new Float64Array(size(lshape));
  walk(lshape, st, start.reduce((a, s, k) => a + s * st[k], 0), (o, s) => (out[o] = data[s]));
  return { data: out, shape: lshape };
}

export class SpmdSimulator implements SpmdEmitter {
  private n = 0;
  /**
   * @param devices number of devices (1: a whole program)
   * @param feed    the local data of argument `info` on device `p` (shape `type.shape`)
   */
  constructor(
    readonly devices: number,
    readonly feed: (info: ArgInfo, type: XlaType, p: number) => ArrayLike<number>,
  ) {}

  private mk(type: XlaType, data: Float64Array[]): SimValue {
    return { ref: `%s${this.n++}`, type, data };
  }
  private map(type: XlaType, f: (p: number) => Float64Array): SimValue {
    const data: Float64Array[] = [];
    for (let p = 0; p < this.devices; p++) data.push(f(p));
    return this.mk(type, data);
  }
  private d(v: XlaValue): readonly Float64Array[] {
    return (v as SimValue).data;
  }

  setOrigin(): void {}

  arg(type: XlaType, info: ArgInfo): XlaValue {
    return this.map(type, (p) => {
      const x = this.feed(info, type, p);
      if (x.length !== size(type.shape)) throw new Error(`simulator: argument ${info.name} fed ${x.length} elements for [${type.shape}]`);
      return Float64Array.from(x);
    });
  }

  constant(value: number, type: XlaType): XlaValue {
    return this.map(type, () => new Float64Array(size(type.shape)).fill(value));
  }

  iota(type: XlaType, dim: number): XlaValue {
    const st = stridesOf(type.shape);
    return this.map(type, () => {
      const out = new Float64Array(size(type.shape));
      for (let i = 0; i < out.length; i++) out[i] = floor(i / st[dim]) % type.shape[dim];
      return out;
    });
  }

  unary(op: XlaUnary, x: XlaValue): XlaValue {
    const f: (a: number) => number = {
      negate: (a: number) => -a,
      exponential: Math.exp,
      log: Math.log,
      tanh: Math.tanh,
      rsqrt: (a: number) => 1 / Math.sqrt(a),
      sqrt: Math.sqrt,
      sine: Math.sin,
      cosine: Math.cos,
      abs: abs,
      logistic: (a: number) => 1 / (1 + Math.exp(-a)),
      not: x.type.dtype === 'bool' ? (a: number) => (a ? 0 : 1) : (a: number) => ~a,
    }[op];
    const type = op === 'not' ? { dtype: x.type.dtype, shape: x.type.shape } : x.type;
    return this.map(type, (p) => this.d(x)[p].map(f));
  }

  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    const int = isInt(a.type.dtype);
    const f: (x: number, y: number) => number = {
      add: (x: number, y: number) => x + y,
      subtract: (x: number, y: number) => x - y,
      multiply: (x: number, y: number) => x * y,
      divide: int ? (x: number, y: number) => trunc(x / y) : (x: number, y: number) => x / y,
      maximum: max,
      minimum: min,
      power: Math.pow,
      and: (x: number, y: number) => (a.type.dtype === 'bool' ? (x && y ? 1 : 0) : x & y),
      or: (x: number, y: number) => (a.type.dtype === 'bool' ? (x || y ? 1 : 0) : x | y),
      remainder: (x: number, y: number) => x % y,
    }[op];
    this.sameShape(a, b, op);
    return this.map(a.type, (p) => {
      const x = this.d(a)[p];
      const y = this.d(b)[p];
      const out = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(x[i], y[i]);
      return out;
    });
  }

  private sameShape(a: XlaValue, b: XlaValue, what: string): void {
    if (a.type.shape.length !== b.type.shape.length || a.type.shape.some((d, i) => d !== b.type.shape[i])) {
      throw new Error(`simulator: ${what} of [${a.type.shape}] and [${b.type.shape}]`);
    }
  }

  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    const f = { EQ: (x: number, y: number) => x === y, NE: (x: number, y: number) => x !== y, LT: (x: number, y: number) => x < y, LE: (x: number, y: number) => x <= y, GT: (x: number, y: number) => x > y, GE: (x: number, y: number) => x >= y }[dir];
    this.sameShape(a, b, 'compare');
    return this.map({ dtype: 'bool', shape: a.type.shape }, (p) => {
      const x = this.d(a)[p];
      const y = this.d(b)[p];
      const out = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f(x[i], y[i]) ? 1 : 0;
      return out;
    });
  }

  select(pred: XlaValue, t: XlaValue, f: XlaValue): XlaValue {
    this.sameShape(t, f, 'select');
    this.sameShape(pred, t, 'select');
    return this.map(t.type, (p) => {
      const c = this.d(pred)[p];
      const x = this.d(t)[p];
      const y = this.d(f)[p];
      const out = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = c[i] ? x[i] : y[i];
      return out;
    });
  }

  convert(x: XlaValue, dtype: DType): XlaValue {
    const f = dtype === 'bool' ? (a: number) => (a !== 0 ? 1 : 0) : isInt(dtype) ? trunc : (a: number) => a;
    return this.map(resultType.withDtype(x.type, dtype), (p) => this.d(x)[p].map(f));
  }

  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    const st = stridesOf(x.type.shape);
    const shape = perm.map((k) => x.type.shape[k]);
    const pst = perm.map((k) => st[k]);
    return this.map({ dtype: x.type.dtype, shape }, (p) => {
      const src = this.d(x)[p];
      const out = new Float64Array(src.length);
      walk(shape, pst, 0, (o, s) => (out[o] = src[s]));
      return out;
    });
  }

  dot(a: XlaValue, b: XlaValue, dd: DotDims): XlaValue {
    const sa = a.type.shape;
    const sb = b.type.shape;
    const freeA = sa.map((_, i) => i).filter((i) => !dd.lhsBatch.includes(i) && !dd.lhsContract.includes(i));
    const freeB = sb.map((_, i) => i).filter((i) => !dd.rhsBatch.includes(i) && !dd.rhsContract.includes(i));
    const B = size(dd.lhsBatch.map((i) => sa[i]));
    const M = size(freeA.map((i) => sa[i]));
    const K = size(dd.lhsContract.map((i) => sa[i]));
    const N = size(freeB.map((i) => sb[i]));
    dd.lhsContract.forEach((i, k) => {
      if (sa[i] !== sb[dd.rhsContract[k]]) throw new Error(`simulator: dot contracts ${sa[i]} with ${sb[dd.rhsContract[k]]}`);
    });
    const out = resultType.dot(a.type, b.type, dd);
    // [batch, free, contract] for the left, [batch, contract, free] for the right.
    const pa = [...dd.lhsBatch, ...freeA, ...dd.lhsContract];
    const pb = [...dd.rhsBatch, ...dd.rhsContract, ...freeB];
    const ta = this.transpose(a, pa) as SimValue;
    const tb = this.transpose(b, pb) as SimValue;
    return this.map(out, (p) => {
      const x = ta.data[p];
      const y = tb.data[p];
      const o = new Float64Array(B * M * N);
      for (let bb = 0; bb < B; bb++) {
        for (let m = 0; m < M; m++) {
          const xo = (bb * M + m) * K;
          const oo = (bb * M + m) * N;
          for (let k = 0; k < K; k++) {
            const xv = x[xo + k];
            if (xv === 0) continue;
            const yo = (bb * K + k) * N;
            for (let n = 0; n < N; n++) o[oo + n] += xv * y[yo + n];
          }
        }
      }
      return o;
    });
  }

  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue {
    const out = resultType.reduce(x.type, dims);
    const ost = stridesOf(out.shape);
    // Stride in the output of each input dim (0 for reduced dims).
    const toOut: number[] = [];
    let k = 0;
    x.type.shape.forEach((_, i) => toOut.push(dims.includes(i) ? 0 : ost[k++]));
    const f = { add: (p: number, q: number) => p + q, mul: (p: number, q: number) => p * q, max: max, min: min }[reducer];
    const init = reducerInit(reducer, x.type.dtype);
    return this.map(out, (p) => {
      const src = this.d(x)[p];
      const o = new Float64Array(size(out.shape)).fill(init);
      walk(x.type.shape, toOut, 0, (i, s) => (o[s] = f(o[s], src[i])));
      return o;
    });
  }

  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    if (size(shape) !== size(x.type.shape)) throw new Error(`simulator: reshape [${x.type.shape}] to [${shape}]`);
    return this.mk({ dtype: x.type.dtype, shape }, [...this.d(x)] as Float64Array[]);
  }

  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    const st = stridesOf(x.type.shape);
    const src = shape.map(() => 0);
    dims.forEach((od, k) => (src[od] = x.type.shape[k] === 1 && shape[od] !== 1 ? 0 : st[k]));
    return this.map({ dtype: x.type.dtype, shape }, (p) => {
      const v = this.d(x)[p];
      const o = new Float64Array(size(shape));
      walk(shape, src, 0, (i, s) => (o[i] = v[s]));
      return o;
    });
  }

  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    const out = resultType.slice(x.type, start, limit, strides);
    const st = stridesOf(x.type.shape);
    const sst = st.map((s, k) => s * (strides?.[k] ?? 1));
    const base = start.reduce((a, s, k) => a + s * st[k], 0);
    return this.map(out, (p) => {
      const v = this.d(x)[p];
      const o = new Float64Array(size(out.shape));
      walk(out.shape, sst, base, (i, s) => (o[i] = v[s]));
      return o;
    });
  }

  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    const out = resultType.concat(xs.map((x) => x.type), dim);
    const ost = stridesOf(out.shape);
    return this.map(out, (p) => {
      const o = new Float64Array(size(out.shape));
      let off = 0;
      for (const x of xs) {
        const v = this.d(x)[p];
        walk(x.type.shape, ost, off * ost[dim], (i, s) => (o[s] = v[i]));
        off += x.type.shape[dim];
      }
      return o;
    });
  }

  /** XLA gather semantics (batch dims of the output index the indices; offset dims index the slice). */
  gather(operand: XlaValue, indices: XlaValue, g: GatherDims, outShape: readonly number[]): XlaValue {
    const os = operand.type.shape;
    const ist = indices.type.shape;
    const ivd = g.indexVectorDim;
    const iShape = ivd === ist.length ? [...ist, 1] : ist;
    const iStr = stridesOf(iShape);
    const oStr = stridesOf(os);
    const batchDims = outShape.map((_, i) => i).filter((i) => !g.offsetDims.includes(i));
    const sliceDims = os.map((_, i) => i).filter((i) => !g.collapsedSliceDims.includes(i));
    const nIdx = iShape[ivd];
    return this.map({ dtype: operand.type.dtype, shape: outShape }, (p) => {
      const src = this.d(operand)[p];
      const ind = this.d(indices)[p];
      const o = new Float64Array(size(outShape));
      const ostr = stridesOf(outShape);
      for (let i = 0; i < o.length; i++) {
        const out = outShape.map((d, k) => floor(i / ostr[k]) % d);
        // Position in the indices: batch coordinates with the index-vector dim inserted.
        const G = batchDims.map((k) => out[k]);
        const start = os.map(() => 0);
        for (let v = 0; v < nIdx; v++) {
          let off = 0;
          let gi = 0;
          for (let d = 0; d < iShape.length; d++) off += (d === ivd ? v : G[gi++]) * iStr[d];
          const od = g.startIndexMap[v];
          start[od] = min(max(ind[off], 0), os[od] - g.sliceSizes[od]);
        }
        let s = 0;
        for (let d = 0; d < os.length; d++) s += start[d] * oStr[d];
        g.offsetDims.forEach((od, j) => (s += out[od] * oStr[sliceDims[j]]));
        o[i] = src[s];
      }
      return o;
    });
  }

  // ---------- SPMD ----------

  private group(g: ReplicaGroupSet, p: number): readonly number[] {
    for (const grp of g.groups) if (grp.includes(p)) return grp;
    throw new Error(`simulator: device ${p} is in no replica group over ${g.axes}`);
  }

  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    const k = g.groups[0].length;
    const out = resultType.gathered(x.type, dim, k);
    return this.map(out, (p) => {
      const members = this.group(g, p);
      const parts = members.map((q) => this.mk(x.type, [this.d(x)[q]]));
      return (new SpmdSimulator(1, this.feed).concatenate(parts, dim) as SimValue).data[0];
    });
  }

  allReduce(x: XlaValue, g: ReplicaGroupSet, reducer: XlaReducer): XlaValue {
    const f = { add: (p: number, q: number) => p + q, mul: (p: number, q: number) => p * q, max: max, min: min }[reducer];
    return this.map(x.type, (p) => {
      const members = this.group(g, p);
      const o = Float64Array.from(this.d(x)[members[0]]);
      for (const q of members.slice(1)) {
        const v = this.d(x)[q];
        for (let i = 0; i < o.length; i++) o[i] = f(o[i], v[i]);
      }
      return o;
    });
  }

  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    const k = g.groups[0].length;
    const out = resultType.scattered(x.type, dim, k);
    const summed = this.allReduce(x, g, 'add') as SimValue;
    const one = new SpmdSimulator(1, this.feed);
    return this.map(out, (p) => {
      const j = this.group(g, p).indexOf(p);
      const start = x.type.shape.map((_, d) => (d === dim ? j * out.shape[dim] : 0));
      const limit = x.type.shape.map((s, d) => (d === dim ? (j + 1) * out.shape[dim] : s));
      return (one.slice(this.mk(x.type, [summed.data[p]]), start, limit) as SimValue).data[0];
    });
  }

  allToAll(x: XlaValue, splitDim: number, concatDim: number, g: ReplicaGroupSet): XlaValue {
    const k = g.groups[0].length;
    const out = resultType.allToAll(x.type, splitDim, concatDim, k);
    const one = new SpmdSimulator(1, this.feed);
    const chunk = x.type.shape[splitDim] / k;
    return this.map(out, (p) => {
      const members = this.group(g, p);
      const j = members.indexOf(p);
      const parts = members.map((q) => {
        const start = x.type.shape.map((_, d) => (d === splitDim ? j * chunk : 0));
        const limit = x.type.shape.map((s, d) => (d === splitDim ? (j + 1) * chunk : s));
        return one.slice(this.mk(x.type, [this.d(x)[q]]), start, limit);
      });
      return (one.concatenate(parts, concatDim) as SimValue).data[0];
    });
  }

  partitionId(): XlaValue {
    return this.map({ dtype: 'i32', shape: [] }, (p) => Float64Array.of(p));
  }

  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    const st = stridesOf(x.type.shape);
    return this.map({ dtype: x.type.dtype, shape: sizes }, (p) => {
      const v = this.d(x)[p];
      const base = starts.reduce((a, s, k) => a + min(max(this.d(s)[p][0], 0), x.type.shape[k] - sizes[k]) * st[k], 0);
      const o = new Float64Array(size(sizes));
      walk(sizes, st, base, (i, s) => (o[i] = v[s]));
      return o;
    });
  }

  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    const st = stridesOf(x.type.shape);
    const us = update.type.shape;
    return this.map(x.type, (p) => {
      const o = Float64Array.from(this.d(x)[p]);
      const u = this.d(update)[p];
      const base = starts.reduce((a, s, k) => a + min(max(this.d(s)[p][0], 0), x.type.shape[k] - us[k]) * st[k], 0);
      walk(us, st, base, (i, s) => (o[s] = u[i]));
      return o;
    });
  }
}

/** Global arrays of a program's arguments, by name. */
export type Feeds = ReadonlyMap<string, ArrayLike<number>>;

/** Run the whole (unpartitioned) program; returns every node's value. */
export function simulateWhole(g: Graph, feeds: Feeds, o: ProgramOptions = { env: {} }): { values: Map<NodeId, SimValue>; outputs: Map<string, Float64Array> } {
  const sim = new SpmdSimulator(1, (info) => feeds.get(info.name) ?? missing(info.name));
  const values = new Map<NodeId, XlaValue>();
  const outs = emitWholeProgram(g, sim as unknown as WholeProgramEmitter, o, undefined, values);
  return { values: values as Map<NodeId, SimValue>, outputs: new Map(outs.map((x) => [x.name, (x.value as SimValue).data[0]])) };
}

function missing(name: string): never {
  throw new Error(`simulator: no data for argument '${name}'`);
}

export interface PartitionedRun {
  readonly partitioner: Partitioner;
  readonly values: ReadonlyMap<NodeId, XlaValue>;
  /** Each output reassembled from its devices' shards (global layout). */
  readonly outputs: Map<string, Float64Array>;
  /** Layer segments recorded / replayed by the partitioner (replay.ts). */
  readonly segments: PartitionResult['segments'];
}

/**
 * Run the per-device program of `g` on every device of `mesh`: each argument is cut into its devices' shards
 * by the partitioner's own layout, every output reassembled from its shards (and checked to agree where
 * replicated).
 */
export function simulatePartitioned(
  g: Graph, mesh: Mesh, policy: ParamPolicy, feeds: Feeds, o: ProgramOptions = { env: {} },
  /** Fixed layouts of arguments by name (the rest as `partitionGraph` decides). */
  specs?: ReadonlyMap<string, Spec>,
  onCollective?: (e: CollectiveEvent) => void,
): PartitionedRun {
  const shapes = new Map(sourceNodes(g).map((n) => [String(n.attrs.name), nodeType(n, o).shape]));
  const sim = new SpmdSimulator(mesh.devices, (info, _t, p) => {
    if (!info.spec) throw new Error(`simulator: argument ${info.name} has no partition spec`);
    return localBlock(mesh, feeds.get(info.name) ?? missing(info.name), shapes.get(info.name)!, info.spec, p).data;
  });
  // Every node's own per-device value (checkPartition compares them all): no segment replay unless asked for
  // (a replayed segment's inner nodes keep the recorded segment's values — outputs are exact either way).
  const r = partitionGraph(g, mesh, policy, sim, { replay: false, ...o }, specs, onCollective);
  const outputs = new Map<string, Float64Array>();
  for (const x of r.outputs) outputs.set(x.name, assemble(mesh, (x.local as SimValue).data, x.global.shape, x.spec, x.name));
  return { partitioner: r.partitioner, values: r.values, outputs, segments: r.segments };
}

/** A global array from per-device shards under `spec`; replicas must agree. */
export function assemble(mesh: Mesh, shards: readonly Float64Array[], shape: readonly number[], spec: Spec, what = 'value'): Float64Array {
  const out = new Float64Array(size(shape));
  const seen = new Uint8Array(out.length);
  const strides = axisStrides(mesh);
  const gst = stridesOf(shape);
  for (let p = 0; p < shards.length; p++) {
    const lshape: number[] = [];
    let base = 0;
    shape.forEach((d, k) => {
      const { idx, ways } = blockOf(mesh, strides, spec, k, p);
      lshape.push(d / ways);
      base += idx * (d / ways) * gst[k];
    });
    const v = shards[p];
    walk(lshape, gst, base, (i, s) => {
      if (seen[s]) {
        const a = out[s];
        const b = v[i];
        if (!(a === b || ((a !== a) && (b !== b)) || abs(a - b) <= 1e-9 * max(1, abs(a)))) {
          throw new Error(`simulator: replicas of ${what} disagree (device ${p}: ${b} vs ${a})`);
        }
      }
      out[s] = v[i];
      seen[s] = 1;
    });
  }
  return out;
}

export interface NodeMismatch {
  readonly node: NodeId;
  readonly maxAbsErr: number;
  readonly scale: number;
  readonly spec: Spec;
  readonly partial: readonly string[] | null;
}

/**
 * Compare every node's per-device value with the whole program's (sliced by its spec; a pending partial sum
 * summed over its group first). Returns the mismatching nodes in graph order (relative tolerance `tol`).
 */
export function checkPartition(g: Graph, mesh: Mesh, run: PartitionedRun, whole: ReadonlyMap<NodeId, SimValue>, tol = 1e-9): NodeMismatch[] {
  const bad: NodeMismatch[] = [];
  const strides = axisStrides(mesh);
  for (const n of g.nodes) {
    const v = run.values.get(n.id);
    const ref = whole.get(n.id);
    if (!v || !ref) continue;
    const info = run.partitioner.info(v);
    if (info.splat !== undefined || info.bcast || info.undecided || !info.local) continue;
    const local = info.local as SimValue;
    if (!local.data) continue;
    const refData = ref.data[0];
    const scale = maxAbs(refData);
    let err = 0;
    for (let p = 0; p < mesh.devices; p++) {
      let got = local.data[p];
      if (info.partial) {
        // Sum over the devices that differ from p only in the partial's axes.
        const others = mesh.axes.filter((a) => !info.partial!.axes.includes(a.name));
        const key = (q: number) => others.map((a) => floor(q / strides.get(a.name)!) % a.size).join(',');
        const f = { add: (x: number, y: number) => x + y, mul: (x: number, y: number) => x * y, max: max, min: min }[info.partial.reducer];
        const acc = Float64Array.from(got);
        for (let q = 0; q < mesh.devices; q++) {
          if (q === p || key(q) !== key(p)) continue;
          const w = local.data[q];
          for (let i = 0; i < acc.length; i++) acc[i] = f(acc[i], w[i]);
        }
        got = acc;
      }
      const want = localBlock(mesh, refData, ref.type.shape, info.spec, p).data;
      err = max(err, maxDiff(got, want));
    }
    if (err > tol * max(1, scale)) bad.push({ node: n.id, maxAbsErr: err, scale, spec: info.spec, partial: info.partial ? info.partial.axes : null });
  }
  return bad;
}

/** Largest |a − b| (equal infinities and NaN pairs count as equal; any other NaN as ∞). */
function maxDiff(a: Float64Array, b: Float64Array): number {
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    const e = abs(x - y);
    if (e > err) err = e;
    else if (e !== e && !(x !== x && y !== y)) err = Infinity;
  }
  return err;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}
