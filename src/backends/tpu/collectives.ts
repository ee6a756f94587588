/**
 * Collective time on a torus (scaling book `sharding.md`, FIGURES.md §4). V = bytes of the full array,
 * W = bidirectional ICI bandwidth per link:
 *   all-gather / reduce-scatter over one axis with wraparound: T ≈ max(V / W, T_hop · |X| / 2);
 *   over n physical axes at once V / (W · n); without wraparound a ring takes about twice as long (and |X| hops);
 *   all-reduce = 2 × all-gather; all-to-all ≈ all-gather / 4.
 * An axis that spans slices runs hierarchically: within the slice over ICI (V / slices), then across slices
 * over the data-center network at the per-chip DCN bandwidth: V · (s − 1) / s / DCN.
 */
import { Mesh } from './mesh';
import { CollectiveKind } from './partition';

export interface CollectiveTime {
  readonly seconds: number;
  readonly ici_s: number;
  readonly dcn_s: number;
  readonly latency_s: number;
}

export function collectiveTime(mesh: Mesh, kind: CollectiveKind, axes: readonly string[], bytes: number): CollectiveTime {
  const chip = mesh.topology.chip;
  const pieces = mesh.axes.filter((a) => axes.includes(a.name)).flatMap((a) => a.pieces);
  const ici = pieces.filter((p) => !p.dcn && p.size > 1);
  const dcn = pieces.filter((p) => p.dcn).reduce((s, p) => s * p.size, 1);
  const factor = kind === 'all-reduce' ? 2 : kind === 'all-to-all' ? 0.25 : 1;
  let iciS = 0;
  let lat = 0;
  if (ici.length) {
    const wrap = ici.every((p) => p.wrap);
    const v = bytes / dcn;
    iciS = (v / (chip.iciBidi * ici.length)) * (wrap ? 1 : 2);
    lat = chip.hopLatency * ici.reduce((s, p) => s + (p.wrap ? p.size / 2 : p.size), 0);
  }
  const dcnS = dcn > 1 ? (bytes * (dcn - 1)) / dcn / chip.dcnPerChip : 0;
  const seconds = factor * (Math.max(iciS, lat) + dcnS);
  return { seconds, ici_s: factor * iciS, dcn_s: factor * dcnS, latency_s: factor * lat };
}
