/**
 * Physical topologies (tori of chips, possibly several slices joined by the data-center network) and logical
 * meshes mapped onto them (`data=768,model=8`). A logical axis is made of pieces of physical axes; its
 * collectives run over those links, with or without wraparound.
 */
import { ChipSpec } from './chips';
import { TpuError } from './errors';

export interface PhysAxis {
  readonly size: number;
  /** Wraparound links close the ring on this axis. */
  readonly wrap: boolean;
  /** The slice axis: crossed over the data-center network, not ICI. */
  readonly dcn: boolean;
}

export interface Topology {
  readonly chip: ChipSpec;
  readonly text: string;
  readonly axes: readonly PhysAxis[];
  readonly chips: number;
  readonly slices: number;
}

/** One piece of a physical axis that a logical axis occupies. */
export interface AxisPiece {
  readonly phys: number;
  readonly size: number;
  /** A ring over this piece has wraparound (the whole physical axis, with wrap links). */
  readonly wrap: boolean;
  readonly dcn: boolean;
}

export interface MeshAxis {
  readonly name: string;
  readonly size: number;
  readonly pieces: readonly AxisPiece[];
}

export interface Mesh {
  readonly topology: Topology;
  readonly axes: readonly MeshAxis[];
  readonly devices: number;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function parseDims(text: string, what: string): number[] {
  const parts = text.trim().toLowerCase().split('x');
  const dims = parts.map((p) => Number(p));
  if (!parts.length || dims.some((d, i) => !/^\d+$/.test(parts[i]) || !Number.isInteger(d) || d < 1)) {
    throw new TpuError(`${what} '${text}' is not of the form AxB or AxBxC with positive integers`);
  }
  return dims;
}

/**
 * Parse a topology for a chip. `k` numbers for a chip with a k-D torus describe one slice; one more number in
 * front counts slices joined over DCN (e.g. v5e `2x16x16` = two 16x16 pods, as Gemma 2 2B was trained).
 */
export function parseTopology(chip: ChipSpec, text: string): Topology {
  const dims = parseDims(text, `--topology`);
  const k = chip.torusDims;
  let slices = 1;
  let ici = dims;
  if (dims.length === k + 1) {
    slices = dims[0];
    ici = dims.slice(1);
  } else if (dims.length !== k) {
    throw new TpuError(
      `--topology ${text}: a ${chip.name} slice is a ${k}D torus, so give ${k} sizes (e.g. ${k === 3 ? '4x4x8' : k === 2 ? '16x16' : '8'}) or ${k + 1} with the number of slices first`,
    );
  }
  const perSlice = prod(ici);
  if (perSlice > chip.podChips) {
    throw new TpuError(`--topology ${text}: one ${chip.name} slice has at most ${chip.podChips} chips, this one has ${perSlice}; put the number of slices first (e.g. ${Math.ceil(perSlice / chip.podChips)}x...)`);
  }
  const bad = sliceShapeProblem(chip, ici);
  if (bad) throw new TpuError(`--topology ${text}: ${bad}`);
  const wraps = ici.map((d) => {
    if (chip.wrap === 'all') return true;
    if (chip.wrap === 'axis16') return d === 16;
    return ici.every((e) => e % 4 === 0) && d > 1;
  });
  const axes: PhysAxis[] = [];
  if (slices > 1) axes.push({ size: slices, wrap: false, dcn: true });
  ici.forEach((d, i) => axes.push({ size: d, wrap: wraps[i], dcn: false }));
  return { chip, text: dims.join('x'), axes, chips: prod(dims), slices };
}

/** Slice shapes Cloud TPU offers (any axis order): 2D v5e/v6e slices, and the small 3D slices below 4x4x4. */
const SLICES_2D = ['1x1', '2x2', '2x4', '4x4', '4x8', '8x8', '8x16', '16x16'];
const SMALL_3D = ['1x2x2', '2x2x2', '2x2x4', '2x4x4'];
const sortedKey = (d: readonly number[]) => [...d].sort((a, b) => a - b).join('x');

/** Why `ici` is not a slice shape of `chip` (undefined when it is). */
function sliceShapeProblem(chip: ChipSpec, ici: readonly number[]): string | undefined {
  const key = sortedKey(ici);
  if (chip.torusDims === 2 && !SLICES_2D.includes(key)) {
    return `${ici.join('x')} is not a ${chip.name} slice shape (slices are ${SLICES_2D.join(', ')} in either order; more chips are several slices: put their number first, e.g. 2x16x16)`;
  }
  if (chip.torusDims === 3 && !SMALL_3D.includes(key) && !ici.every((d) => d % 4 === 0)) {
    return `${ici.join('x')} is not a ${chip.name} slice shape (a 3D slice is 2x2x1, 2x2x2, 2x2x4, 2x4x4, or every side a multiple of 4, e.g. 4x4x8 or 8x24x32)`;
  }
  return undefined;
}

/** A default topology for `n` chips: near-square (2D) or near-cube (3D) slices, several slices beyond a pod. */
export function defaultTopology(chip: ChipSpec, n: number): Topology {
  if (!Number.isInteger(n) || n < 1) throw new TpuError(`chip count ${n} is not a positive integer`);
  const shapeOf = (per: number): number[] | undefined => {
    if (chip.torusDims === 2) return SLICES_2D.map((s) => s.split('x').map(Number)).find((d) => d[0] * d[1] === per);
    if (chip.torusDims === 3) return per % 64 === 0 ? balancedFactors(per / 64, 3).map((d) => 4 * d) : SMALL_3D.map((s) => s.split('x').map(Number)).find((d) => prod(d) === per);
    return [per];
  };
  let slices = 1;
  let dims: number[] | undefined;
  if (n > chip.podChips) {
    // The fewest slices of equal size that each form a slice shape (two v5p pods of 8960 = 17920 chips).
    for (let k = Math.ceil(n / chip.podChips); k <= n && !dims; k++) {
      if (n % k === 0 && n / k <= chip.podChips && shapeOf(n / k)) {
        slices = k;
        dims = shapeOf(n / k);
      }
    }
    if (!dims) throw new TpuError(`${n} ${chip.name} chips exceed one slice (${chip.podChips}) and do not split into equal slices of a ${chip.name} slice shape; give --topology`);
  } else dims = shapeOf(n);
  if (!dims) {
    const sizes = chip.torusDims === 2 ? SLICES_2D.map((s) => prod(s.split('x').map(Number))) : [4, 8, 16, 32, '64k'];
    throw new TpuError(`${n} ${chip.name} chips do not form a slice (${chip.name} slices have ${sizes.join(', ')} chips${chip.torusDims === 3 ? ' (k ≥ 1)' : ''}); give --topology or another --chips`);
  }
  return parseTopology(chip, [...(slices > 1 ? [slices] : []), ...dims].join('x'));
}

/** Factor n into k factors as equal as possible (ascending), preferring powers of two. */
function balancedFactors(n: number, k: number): number[] {
  if (k === 1) return [n];
  let best: number[] | undefined;
  let score = Infinity;
  const rec = (left: number, parts: number[]) => {
    if (parts.length === k - 1) {
      const all = [...parts, left].sort((a, b) => a - b);
      const s = Math.max(...all) / Math.min(...all);
      if (s < score) [best, score] = [all, s];
      return;
    }
    for (let f = 1; f <= left; f++) if (left % f === 0) rec(left / f, [...parts, f]);
  };
  rec(n, []);
  return best!;
}

/** Parse `data=768,model=8` (axis names are identifiers; sizes positive integers; `-1` = the rest). */
export function parseMeshSpec(text: string, chips: number): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  let rest = -1;
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length > 1 && parts.some((s) => !s)) throw new TpuError(`--mesh ${text}: an empty axis between commas (e.g. --mesh data=768,model=8)`);
  for (const part of parts.filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(-1|\d+)$/.exec(part);
    if (!m) throw new TpuError(`--mesh: '${part}' is not NAME=SIZE (e.g. --mesh data=768,model=8)`);
    if (out.some((a) => a.name === m[1])) throw new TpuError(`--mesh: axis '${m[1]}' is given twice`);
    const size = Number(m[2]);
    if (size === 0) throw new TpuError(`--mesh: axis '${m[1]}' has size 0`);
    if (size === -1) {
      if (rest >= 0) throw new TpuError('--mesh: only one axis may be -1');
      rest = out.length;
    }
    out.push({ name: m[1], size });
  }
  if (!out.length) throw new TpuError('--mesh is empty (e.g. --mesh data=768,model=8)');
  if (rest >= 0) {
    const known = prod(out.filter((_, i) => i !== rest).map((a) => a.size));
    if (chips % known !== 0) throw new TpuError(`--mesh ${text}: ${chips} chips are not divisible by ${known}`);
    out[rest] = { name: out[rest].name, size: chips / known };
  }
  const p = prod(out.map((a) => a.size));
  if (p !== chips) {
    throw new TpuError(`--mesh ${text}: the axes multiply to ${p} devices, but the topology has ${chips} chips`);
  }
  return out;
}

/**
 * Map logical axes onto physical ones. The last logical axis (e.g. `model`) gets the innermost physical
 * axes, so the most communication-heavy parallelism sits on fast, short rings; the slice (DCN) axis can only
 * belong to the outermost logical axis. A logical axis takes a whole physical axis of its size when there is one,
 * else pieces of physical axes (innermost first), each the largest part of what remains that divides it.
 */
export function mapMesh(topology: Topology, spec: readonly { name: string; size: number }[]): Mesh {
  const remaining = topology.axes.map((a) => a.size);
  const axes: MeshAxis[] = [];
  for (let li = spec.length - 1; li >= 0; li--) {
    const { name, size } = spec[li];
    const pieces: AxisPiece[] = [];
    let need = size;
    // A whole unused physical axis of exactly this size (keeps its wraparound) wins, DCN last.
    const exact = [...topology.axes.keys()].reverse().find((i) => remaining[i] === topology.axes[i].size && topology.axes[i].size === size && (!topology.axes[i].dcn || li === 0));
    if (exact !== undefined && size > 1) {
      const phys = topology.axes[exact];
      pieces.push({ phys: exact, size, wrap: phys.wrap, dcn: phys.dcn });
      remaining[exact] = 1;
      need = 1;
    }
    // Then pieces of the physical axes from the innermost out: as much of each as divides what is still needed
    // (the greatest common divisor), so model=8 on a 4x4x12 torus takes 4 of the 12 and 2 of a 4.
    for (let q = topology.axes.length - 1; q >= 0 && need > 1; q--) {
      const r = remaining[q];
      const g = gcd(need, r);
      if (g <= 1) continue;
      const phys = topology.axes[q];
      pieces.unshift({ phys: q, size: g, wrap: phys.wrap && g === phys.size, dcn: phys.dcn });
      remaining[q] = r / g;
      need /= g;
    }
    if (need > 1) {
      throw new TpuError(
        `--mesh: axis '${name}'=${size} cannot be laid onto the ${topology.chip.name} torus ${topology.text}: ` +
          `after the axes to its right, no remaining physical axes multiply to it (its size must be a product of divisors of the physical axes)`,
      );
    }
    if (pieces.some((x) => x.dcn) && li !== 0) {
      throw new TpuError(`--mesh: axis '${name}' would cross slices over the data-center network; only the first axis may (put the data axis first)`);
    }
    axes.unshift({ name, size, pieces });
  }
  return { topology, axes, devices: topology.chips };
}

export function makeMesh(topology: Topology, meshText: string): Mesh {
  return mapMesh(topology, parseMeshSpec(meshText, topology.chips));
}

export function axisSize(mesh: Mesh, name: string): number {
  const a = mesh.axes.find((x) => x.name === name);
  if (!a) throw new Error(`mesh has no axis '${name}'`);
  return a.size;
}

export function meshText(mesh: { readonly axes: readonly { readonly name: string; readonly size: number }[] }): string {
  return mesh.axes.map((a) => `${a.name}=${a.size}`).join(',');
}

/** Where each logical axis lies: `data→ici0:8(wrap)×ici1:8(no wrap), model→ici2:8(wrap)` (dcn: across slices). */
export function meshMapping(mesh: Mesh): string {
  const piece = (p: AxisPiece) => `${p.dcn ? 'dcn' : 'ici' + p.phys}:${p.size}${p.dcn ? '' : p.wrap ? '(wrap)' : '(no wrap)'}`;
  return mesh.axes.map((a) => `${a.name}→${a.pieces.map(piece).join('×') || 'none'}`).join(', ');
}

/** Row-major stride of each mesh axis in the flattened device (partition) id. */
export function axisStrides(mesh: Mesh): Map<string, number> {
  const m = new Map<string, number>();
  let s = 1;
  for (let i = mesh.axes.length - 1; i >= 0; i--) {
    m.set(mesh.axes[i].name, s);
    s *= mesh.axes[i].size;
  }
  return m;
}

/** Devices grouped by `groupAxes` (in that order, major to minor); groups ordered by the other axes. */
export function replicaGroups(mesh: Mesh, groupAxes: readonly string[]): number[][] {
  const strides = axisStrides(mesh);
  const others = mesh.axes.filter((a) => !groupAxes.includes(a.name));
  const inner = groupAxes.map((n) => ({ size: axisSize(mesh, n), stride: strides.get(n)! }));
  const outer = others.map((a) => ({ size: a.size, stride: strides.get(a.name)! }));
  const enumerate = (ax: { size: number; stride: number }[]): number[] => {
    let ids = [0];
    for (const a of ax) {
      const next: number[] = [];
      for (const b of ids) for (let i = 0; i < a.size; i++) next.push(b + i * a.stride);
      ids = next;
    }
    return ids;
  };
  const bases = enumerate(outer);
  const offs = enumerate(inner);
  return bases.map((b) => offs.map((o) => b + o));
}

/** XLA's iota form for the same groups: `[G,S]<=[N]` or `[G,S]<=[mesh]T(perm)`. */
export function iotaReplicaGroups(mesh: Mesh, groupAxes: readonly string[]): string {
  const names = mesh.axes.map((a) => a.name);
  const others = names.filter((n) => !groupAxes.includes(n));
  const perm = [...others, ...groupAxes].map((n) => names.indexOf(n));
  const s = prod(groupAxes.map((n) => axisSize(mesh, n)));
  return `[${mesh.devices / s},${s}]${iotaTail(mesh, perm)}`;
}

function iotaTail(mesh: Mesh, perm: readonly number[]): string {
  const identity = perm.every((p, i) => p === i);
  return identity ? `<=[${mesh.devices}]` : `<=[${mesh.axes.map((a) => a.size).join(',')}]T(${perm.join(',')})`;
}

/** A partition spec: for each tensor dim, the mesh axes that split it (major to minor). */
export type Spec = readonly (readonly string[])[];

/** The HLO sharding string of a spec (`{replicated}` or the iota tile-assignment form). */
export function hloSharding(mesh: Mesh, spec: Spec): string {
  const names = mesh.axes.map((a) => a.name);
  const used = spec.flat();
  if (!used.length) return '{replicated}';
  const tiles = spec.map((axes) => prod(axes.map((n) => axisSize(mesh, n))));
  const unused = names.filter((n) => !used.includes(n));
  const rep = prod(unused.map((n) => axisSize(mesh, n)));
  const perm = [...used, ...unused].map((n) => names.indexOf(n));
  const dims = rep > 1 ? [...tiles, rep] : tiles;
  return `{devices=[${dims.join(',')}]${iotaTail(mesh, perm)}${rep > 1 ? ' last_tile_dim_replicate' : ''}}`;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
