/**
 * The sharding overlay: one graph partitioned over a TPU mesh by the TPU backend's own partitioner (the same
 * `partitionForCost` that `lapidary cost` uses), read back per IR node — the partition spec of its output,
 * the HLO sharding, the per-chip shape, the collectives the partitioner inserted while lowering it, and its
 * per-chip roofline time with the cost model's conventions (bf16, fusion-aware bytes, matmul FLOPs at the MXU
 * peak × the achievable fraction, other FLOPs at the vector rate). Summed over a forward graph, the node
 * times are the plan's `compute_s` and the collective times its communication (tests/viz/sharding.test.ts).
 */
import { Graph, NodeId } from '../ir';
import { CollectiveKind, DEFAULT_MATMUL_EFFICIENCY, Mesh, Spec, Strategy, axisSize, collectiveTime, fusedBytes, hloSharding, meshText, partitionForCost } from '../backends/tpu';
import type { VizChipCost, VizCollective, VizSharding } from './format';

/** A node on the mesh: its layout and collectives (shown in the panel), and its per-chip cost (metrics). */
export interface NodeSharding {
  readonly layout: VizSharding;
  readonly cost: VizChipCost;
}

export interface ShardingOptions {
  /** Achievable fraction of the MXU peak (the cost model's calibration). */
  readonly matmulEfficiency?: number;
}

/** `[data, -, model]`: the mesh axes splitting each dim, `-` for none (`lapidary cost` prints param specs so). */
export function specText(spec: Spec): string {
  return `[${spec.map((a) => (a.length ? a.join('*') : '-')).join(', ')}]`;
}

/** Partition `g` (dims bound) over `mesh` with `strategy`; the overlay of every node the partitioner lowered. */
export function shardGraph(g: Graph, mesh: Mesh, strategy: Strategy, o: ShardingOptions = {}): Map<NodeId, NodeSharding> {
  const chip = mesh.topology.chip;
  const eff = o.matmulEfficiency ?? DEFAULT_MATMUL_EFFICIENCY;
  // Every node's own layout (no segment replay: a replayed layer's inner nodes would show the recorded layer's values).
  const { result, recorder, events } = partitionForCost(g, mesh, strategy.policy, 2, undefined, [], { replay: false });
  const p = result.partitioner;
  const instrs = recorder.instrs.toArray();
  const bytes = fusedBytes(
    recorder.instrs,
    result.outputs.map((x) => Number(x.local.ref.slice(2))),
  );
  const acc = new Map<NodeId, { mxu: number; vpu: number; tr: number; bytes: number }>();
  instrs.forEach((ins, i) => {
    if (ins.cls === 'arg' || ins.node < 0) return;
    let a = acc.get(ins.node);
    if (!a) acc.set(ins.node, (a = { mxu: 0, vpu: 0, tr: 0, bytes: 0 }));
    a.mxu += ins.mxuFlops;
    a.vpu += ins.cls === 'collective' ? 0 : ins.vpuFlops;
    a.tr += ins.transcendentals;
    a.bytes += bytes[i];
  });
  const colls = new Map<NodeId, VizCollective[]>();
  for (const e of events) {
    if (!e.axes.length || !e.bytes) continue;
    const list = colls.get(e.node) ?? [];
    list.push({ kind: e.kind, axes: e.axes.join(','), bytes: e.bytes, seconds: collectiveTime(mesh, e.kind as CollectiveKind, e.axes, e.bytes).seconds, ...(e.param ? { weights: true } : {}) });
    colls.set(e.node, list);
  }
  const out = new Map<NodeId, NodeSharding>();
  for (const n of g.nodes) {
    const v = result.values.get(n.id);
    if (!v) continue;
    const spec = p.spec(v);
    const partial = p.partialOf(v);
    const local = p.localType(v.type, spec);
    const a = acc.get(n.id);
    const time = a ? Math.max(a.mxu / (chip.peakFlops * eff) + (a.vpu + a.tr) / chip.vectorFlops, a.bytes / chip.hbmBandwidth) : 0;
    const c = colls.get(n.id) ?? [];
    out.set(n.id, {
      layout: {
        spec: specText(spec),
        hlo: hloSharding(mesh, spec),
        local: `${local.dtype}[${local.shape.join(', ')}]`,
        ways: spec.flat().reduce((k, ax) => k * axisSize(mesh, ax), 1),
        ...(partial ? { partial: `${partial.reducer} over ${partial.axes.join(',')}` } : {}),
        ...(c.length ? { collectives: c } : {}),
      },
      cost: { time, flops: a ? a.mxu + a.vpu : 0, bytes: a ? a.bytes : 0 },
    });
  }
  return out;
}

/** One line for the page header: `data=16,model=4 on 64 v5p (4x4x4), fsdp+tp`. */
export function meshInfo(mesh: Mesh, strategy: Strategy): string {
  return `${meshText(mesh)} on ${mesh.devices} ${mesh.topology.chip.name} (${mesh.topology.text}), ${strategy.name}`;
}
