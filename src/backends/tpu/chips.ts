/**
 * Accelerator specs the planner uses. TPU figures: the scaling book (`tpus.md`) and Google Cloud TPU docs, as
 * collected in FIGURES.md §3; the H100 entry is what was measured on the device machine (calibration only).
 */
import { TpuError } from './errors';

export interface ChipSpec {
  readonly name: string;
  /** Dense bf16 matmul peak, FLOP/s. */
  readonly peakFlops: number;
  /** Vector-unit (non-matmul) throughput, FLOP/s: an assumption (see docs/tpu.md), 1/10 of the matmul peak. */
  readonly vectorFlops: number;
  readonly hbmBytes: number;
  readonly hbmBandwidth: number;
  /** Bidirectional ICI bandwidth per link, B/s (W in the scaling book's formulas). */
  readonly iciBidi: number;
  /** Physical torus dimensionality of one slice: 2 (v5e, v6e), 3 (v4, v5p), 1 (a GPU box: all-to-all links). */
  readonly torusDims: 1 | 2 | 3;
  /** Largest slice (chips); bigger topologies span slices over the data-center network. */
  readonly podChips: number;
  /** Data-center network bandwidth per chip, B/s. */
  readonly dcnPerChip: number;
  /** Latency per ICI hop, s. */
  readonly hopLatency: number;
  /** How wraparound links exist: 'cube4' = only when every axis is a multiple of 4 (full 4x4x4 cubes); 'axis16' = on axes of 16. */
  readonly wrap: 'cube4' | 'axis16' | 'all';
  readonly source: string;
}

const TPU_SRC = 'FIGURES.md §3 (scaling book tpus.md, Cloud TPU docs)';

export const CHIPS: Readonly<Record<string, ChipSpec>> = {
  v4: { name: 'v4', peakFlops: 2.75e14, vectorFlops: 2.75e13, hbmBytes: 32e9, hbmBandwidth: 1.2e12, iciBidi: 9e10, torusDims: 3, podChips: 4096, dcnPerChip: 6.25e9, hopLatency: 1e-6, wrap: 'cube4', source: TPU_SRC },
  v5e: { name: 'v5e', peakFlops: 1.97e14, vectorFlops: 1.97e13, hbmBytes: 16e9, hbmBandwidth: 8.1e11, iciBidi: 9e10, torusDims: 2, podChips: 256, dcnPerChip: 3.125e9, hopLatency: 1e-6, wrap: 'axis16', source: TPU_SRC },
  v5p: { name: 'v5p', peakFlops: 4.59e14, vectorFlops: 4.59e13, hbmBytes: 95e9, hbmBandwidth: 2.76e12, iciBidi: 1.8e11, torusDims: 3, podChips: 8960, dcnPerChip: 6.25e9, hopLatency: 1e-6, wrap: 'cube4', source: TPU_SRC },
  v6e: { name: 'v6e', peakFlops: 9.18e14, vectorFlops: 9.18e13, hbmBytes: 32e9, hbmBandwidth: 1.64e12, iciBidi: 1.8e11, torusDims: 2, podChips: 256, dcnPerChip: 3.125e9, hopLatency: 1e-6, wrap: 'axis16', source: TPU_SRC },
  // Measured on the device machine (FIGURES.md §3): 8192^3 bf16 matmul ≈ 800 TFLOP/s, copy ≈ 3.0 TB/s.
  // NVLink 4: 450 GB/s per direction per GPU, all-to-all through NVSwitch inside a box of 8.
  h100: { name: 'h100', peakFlops: 8.0e14, vectorFlops: 6.7e13, hbmBytes: 80e9, hbmBandwidth: 3.0e12, iciBidi: 9e11, torusDims: 1, podChips: 8, dcnPerChip: 5e10, hopLatency: 2e-6, wrap: 'all', source: 'measured on the device machine (FIGURES.md §3); NVLink 4 spec' },
};

export function getChip(name: string): ChipSpec {
  const c = CHIPS[name.toLowerCase()];
  if (!c) throw new TpuError(`unknown chip '${name}' (option --chip); known: ${Object.keys(CHIPS).join(', ')}`);
  return c;
}
