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
import { emitWholeProgram, partitionGraph, PartitionResult } from './program';
import { StableHloPrinter } from './stablehlo';
import { HloPrinter } from './hlo';
import { ModuleOptions, Output, TeeEmitter } from './spmd';
import { PlanOptions, PlanResult, Strategy, buildTrainingStep, evaluateOn, partitionForCost } from './plan';
import type { TrainingStepInfo } from '../../train/step';
import { CostRecorder } from './record';
import { Outliner } from './outline';
import { decodeStep } from './decode';

export interface EmittedPrograms {
  readonly wholeMlir: string;
  readonly wholeHlo: string;
  readonly partitionedMlir: string;
  readonly partitionedHlo: string;
  readonly paramSpecs: ReadonlyMap<string, Spec>;
  /** Layer functions of the per-device and the whole program (0 with `layerFunctions: false`) and the calls to them. */
  readonly layerFunctions?: { readonly partitioned: LayerFunctionCount; readonly whole: LayerFunctionCount };
}

export interface LayerFunctionCount {
  readonly functions: number;
  readonly calls: number;
}

export interface EmitOptions {
  readonly floatDtype?: 'f32' | 'bf16';
  readonly precision?: ModuleOptions['precision'];
  /** Skip the per-device programs (only the annotated whole program). */
  readonly wholeOnly?: boolean;
  /** Training steps: the first backward node (FSDP weights are gathered again from there). */
  readonly backwardFrom?: number;
  /** Print each repeated layer once as a function and call it (default true); false prints every layer inline. */
  readonly layerFunctions?: boolean;
  /** Layouts already decided (e.g. by the cost plan's partition): skips the deciding pass. */
  readonly decided?: { readonly params: ReadonlyMap<string, Spec>; readonly inputs: ReadonlyMap<string, Spec>; readonly outputs: ReadonlyMap<string, Spec> };
}

export function emitPrograms(g: Graph, mesh: Mesh, policy: ParamPolicy, o: EmitOptions = {}): EmittedPrograms {
  const env = {};
  const name = `${g.name}${g.variant ? '_' + g.variant : ''}`;
  const mo = (manual = false): ModuleOptions => ({ name, numPartitions: mesh.devices, ...(o.precision ? { precision: o.precision } : {}), ...(manual ? { manual } : {}) });
  const po = { env, ...(o.floatDtype ? { floatDtype: o.floatDtype } : {}), ...(o.backwardFrom !== undefined ? { backwardFrom: o.backwardFrom } : {}) };
  // First pass decides parameter placements; the others reuse them so arguments appear in graph order.
  const first =
    o.decided ??
    (() => {
      const r = partitionGraph(g, mesh, policy, new CostRecorder(), po);
      return { params: r.paramSpecs, inputs: r.inputSpecs, outputs: new Map(r.outputs.map((x) => [x.name, x.spec as Spec])) };
    })();
  const fixed = new Map<string, Spec>([...first.inputs, ...first.params]);
  let partitionedMlir = '';
  let partitionedHlo = '';
  const functions = o.layerFunctions ?? true;
  if (!o.wholeOnly) {
    const rec = new Outliner();
    const r = partitionGraph(g, mesh, policy, rec, po, fixed);
    ({ mlir: partitionedMlir, hlo: partitionedHlo } = printBoth(rec, r.outputs.map((x) => ({ value: x.local, name: x.name })), mo(true), functions));
  }
  const shardings = { mesh, params: first.params, inputs: first.inputs, outputs: first.outputs };
  const rec = new Outliner();
  const whole = printBoth(rec, emitWholeProgram(g, rec, po, shardings), mo(), functions);
  return { wholeMlir: whole.mlir, wholeHlo: whole.hlo, partitionedMlir, partitionedHlo, paramSpecs: first.params };
}

/** A recorded program printed as StableHLO and as HLO text, with layer functions or every layer inline. */
function printBoth(rec: Outliner, outputs: readonly Output[], mo: ModuleOptions, functions: boolean): { mlir: string; hlo: string; layers: LayerFunctionCount } {
  const sp = new StableHloPrinter(mo);
  const mlir = sp.finish(rec.print(sp, outputs, { functions }));
  const hp = new HloPrinter(mo);
  const hlo = hp.finish(rec.print(hp, outputs, { functions }));
  return { mlir, hlo, layers: functions ? rec.stats(outputs.map((x) => x.value)) : { functions: 0, calls: 0 } };
}

export interface TpuCompileOptions {
  /** Write the programs (otherwise only the plan). */
  readonly emit?: boolean;
  /** dtype of float tensors in the programs (default: the graph's). */
  readonly floatDtype?: 'f32' | 'bf16';
  readonly precision?: ModuleOptions['precision'];
  /** Print each repeated layer once as a function and call it (default true); false prints every layer inline. */
  readonly layerFunctions?: boolean;
  /** Partition each repeated layer once and replay it (default true; same result — replay.ts). */
  readonly replay?: boolean;
}

export interface TpuCompilation {
  readonly plan: PlanResult;
  /** The program that was partitioned: the graph itself, its training step, or its decode step (KV caches in and out). */
  readonly program: Graph;
  readonly step?: TrainingStepInfo;
  readonly programs?: EmittedPrograms;
  /** The partition (layouts of every argument and output; the per-device programs follow them). */
  readonly partition: PartitionResult;
  /** Wall time of each stage, ms. */
  readonly ms: { training_step: number; partition_and_cost: number; whole_programs: number };
}

/**
 * Everything `compile --target tpu` does after the front end and the passes, in as few passes over the graph as
 * possible: build the training step (`mode: 'train'`), partition it once into the cost recorder and both
 * per-device printers at the same time, cost the plan from the recorder, then print the whole (annotated)
 * program once into both printers.
 */
export function compileTpu(g: Graph, mesh: Mesh, strategy: Strategy, po: PlanOptions, dims: { batch: number; seq: number }, o: TpuCompileOptions = {}): TpuCompilation {
  const mode = po.mode ?? 'forward';
  let t = performance.now();
  const step = mode === 'train' ? buildTrainingStep(g, po.remat ?? 'layer-inputs', po.precision) : undefined;
  // Decode: the one-token graph with its KV caches as arguments and results (the cost stays the analytic
  // decode plan of the one-token graph over the context, which counts the same cache lengths).
  const decode = mode === 'decode' ? decodeStep(g, { context: po.context ?? dims.seq }) : undefined;
  const program = step ? step.graph : decode ? decode.graph : g;
  const msStep = performance.now() - t;
  t = performance.now();
  const name = `${program.name}${g.variant ? '_' + g.variant : ''}`.replace(/\./g, '_');
  const mo = (manual = false): ModuleOptions => ({ name, numPartitions: mesh.devices, ...(o.precision ? { precision: o.precision } : {}), ...(manual ? { manual } : {}) });
  const rec = o.emit ? new Outliner() : undefined;
  const pre = partitionForCost(program, mesh, strategy.policy, 2, step?.forwardEnd, rec ? [rec] : [], { floatDtype: o.floatDtype, ...(o.replay === false ? { replay: false } : {}) });
  const plan = evaluateOn(g, o.replay === false ? { ...po, replay: false } : po, dims, mesh, strategy, step, decode ? undefined : pre);
  const msPart = performance.now() - t;
  t = performance.now();
  let programs: EmittedPrograms | undefined;
  if (rec) {
    const functions = o.layerFunctions ?? true;
    const r = pre.result;
    const part = printBoth(rec, r.outputs.map((x) => ({ value: TeeEmitter.part(x.local, 1), name: x.name })), mo(true), functions);
    const shardings = { mesh, params: r.paramSpecs, inputs: r.inputSpecs, outputs: new Map(r.outputs.map((x) => [x.name, x.spec])) };
    const wrec = new Outliner();
    const whole = printBoth(wrec, emitWholeProgram(program, wrec, { env: {}, ...(o.floatDtype ? { floatDtype: o.floatDtype } : {}) }, shardings), mo(), functions);
    programs = {
      wholeMlir: whole.mlir, wholeHlo: whole.hlo, partitionedMlir: part.mlir, partitionedHlo: part.hlo, paramSpecs: r.paramSpecs,
      layerFunctions: { partitioned: part.layers, whole: whole.layers },
    };
  }
  return { plan, program, partition: pre.result, ...(step ? { step } : {}), ...(programs ? { programs } : {}), ms: { training_step: msStep, partition_and_cost: msPart, whole_programs: performance.now() - t } };
}
