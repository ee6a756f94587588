/**
 * The programs `lapidary compile --target tpu` writes:
 *   program.mlir / program.hlo         the whole program with `mhlo.sharding` on arguments and results, for
 *                                      XLA's SPMD partitioner (`mhlo.num_partitions` = devices);
 *   partitioned.mlir / partitioned.hlo the per-device program with explicit collectives and replica groups.
 * Emission is deterministic: same graph and options, same bytes.
 */
import { Graph } from '../../ir/types';
import { Mesh, Spec } from './mesh';
import { ParamPolicy } from './partition';
import { emitWholeProgram, partitionGraph } from './program';
import { StableHloPrinter } from './stablehlo';
import { HloPrinter } from './hlo';
import { ModuleOptions } from './spmd';
import { CostRecorder } from './record';

export interface EmittedPrograms {
  readonly wholeMlir: string;
  readonly wholeHlo: string;
  readonly partitionedMlir: string;
  readonly partitionedHlo: string;
  readonly paramSpecs: ReadonlyMap<string, Spec>;
}

export interface EmitOptions {
  readonly floatDtype?: 'f32' | 'bf16';
  readonly precision?: ModuleOptions['precision'];
  /** Skip the per-device programs (only the annotated whole program). */
  readonly wholeOnly?: boolean;
}

export function emitPrograms(g: Graph, mesh: Mesh, policy: ParamPolicy, o: EmitOptions = {}): EmittedPrograms {
  const env = {};
  const name = `${g.name}${g.variant ? '_' + g.variant : ''}`;
  const mo = (manual = false): ModuleOptions => ({ name, numPartitions: mesh.devices, ...(o.precision ? { precision: o.precision } : {}), ...(manual ? { manual } : {}) });
  const po = { env, ...(o.floatDtype ? { floatDtype: o.floatDtype } : {}) };
  // First pass decides parameter placements; the others reuse them so arguments appear in graph order.
  const first = partitionGraph(g, mesh, policy, new CostRecorder(), po);
  const spOut = new StableHloPrinter(mo(true));
  const r1 = partitionGraph(g, mesh, policy, spOut, po, first.paramSpecs);
  const partitionedMlir = o.wholeOnly ? '' : spOut.finish(r1.outputs.map((x) => ({ value: x.local, name: x.name })));
  let partitionedHlo = '';
  if (!o.wholeOnly) {
    const hp = new HloPrinter(mo(true));
    const r2 = partitionGraph(g, mesh, policy, hp, po, first.paramSpecs);
    partitionedHlo = hp.finish(r2.outputs.map((x) => ({ value: x.local, name: x.name })));
  }
  const shardings = { mesh, params: first.paramSpecs, inputs: first.inputSpecs, outputs: new Map(first.outputs.map((x) => [x.name, x.spec])) };
  const ws = new StableHloPrinter(mo());
  const wholeMlir = ws.finish(emitWholeProgram(g, ws, po, shardings));
  const wh = new HloPrinter(mo());
  const wholeHlo = wh.finish(emitWholeProgram(g, wh, po, shardings));
  return { wholeMlir, wholeHlo, partitionedMlir, partitionedHlo, paramSpecs: first.paramSpecs };
}
