/** The readable `lapidary cost` report. */
import { PlanResult, RankedPlan } from './plan';

const gb = (x: number) => `${(x / 1e9).toFixed(2)} GB`;
const ms = (x: number) => `${(x * 1e3).toFixed(2)} ms`;
const sci = (x: number) => x.toExponential(3);
const pad = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - s.length));
const lpad = (s: string, n: number) => ' '.repeat(Math.max(0, n - s.length)) + s;

export function formatPlan(r: PlanResult, opts: { layers?: number } = {}): string {
  const L: string[] = [];
  L.push(`${r.model} on ${r.chips} ${r.chip} chip${r.chips === 1 ? '' : 's'} (topology ${r.topology}), mesh ${r.mesh} [${r.mesh_mapping}]`);
  L.push(`strategy ${r.strategy}, mode ${r.mode}${r.remat ? `, remat ${r.remat}` : ''}, batch ${r.batch} × seq ${r.seq}${r.context ? `, context ${r.context}` : ''} (${r.tokens_per_step} tokens/step)`);
  L.push('');
  L.push(`step time          ${ms(r.step_time_s)}  (compute ${ms(r.compute_s)}, exposed communication ${ms(r.exposed_comm_s)}; ${r.bound}-bound)`);
  L.push(`tokens/s/chip      ${r.tokens_per_s_per_chip.toFixed(1)}`);
  L.push(`MFU                ${(100 * r.mfu).toFixed(1)}%  (model FLOPs/step ${sci(r.model_flops_per_step)}, peak ${r.chip})`);
  L.push(`memory per chip    ${gb(r.memory_per_chip_bytes)} of ${gb(r.hbm_bytes)}: ${r.fits ? 'fits' : 'DOES NOT FIT'}`);
  const m = r.memory;
  L.push(`  parameters ${gb(m.parameters)}, gradients ${gb(m.gradients)}, optimizer state ${gb(m.optimizer_state)}, activations ${gb(m.activations)}, KV cache ${gb(m.kv_cache)}`);
  if (r.why) L.push(`  why: ${r.why}`);
  if (r.note) L.push(`  note: ${r.note}`);
  if (r.analytic) L.push(`analytic estimate  step ${ms(r.analytic.step_time_s)}, MFU ${(100 * r.analytic.mfu).toFixed(1)}%, ${gb(r.analytic.memory_per_chip_bytes)}/chip (backward = 2x forward; cross-check)`);
  if (r.train_graph) L.push(`training step      ${r.train_graph.nodes} nodes (${r.train_graph.recomputed} recomputed), ${r.train_graph.residuals} residuals kept: ${gb(r.train_graph.saved_bytes_per_chip)}/chip`);
  if (r.days) L.push(`days               ${r.days.map((d) => `${tokenCount(d.tokens)} tokens: ${d.days < 0.1 ? d.days.toPrecision(2) : d.days.toFixed(1)}`).join(', ')}`);
  L.push('');
  L.push(`per op class (${r.mode === 'train' ? 'the training step' : r.mode}, per chip)`);
  const ops = Object.entries(r.per_op_class).sort((a, b) => b[1].time_s - a[1].time_s);
  L.push(`  ${pad('op', 16)} ${lpad('time', 12)} ${lpad('FLOPs', 11)} ${lpad('transc.', 11)} ${lpad('bytes', 11)}`);
  for (const [k, v] of ops.slice(0, 14)) L.push(`  ${pad(k, 16)} ${lpad(ms(v.time_s), 12)} ${lpad(sci(v.flops), 11)} ${lpad(sci(v.transcendentals), 11)} ${lpad(sci(v.bytes), 11)}`);
  L.push('');
  L.push(`per layer (${r.mode === 'train' ? 'forward + backward' : r.mode})`);
  L.push(`  ${pad('layer', 22)} ${lpad('time', 11)} ${lpad('compute', 11)} ${lpad('weights comm', 13)} ${lpad('act. comm', 11)}`);
  const layers = Object.entries(r.per_layer);
  const show = opts.layers ?? 6;
  const row = ([k, v]: (typeof layers)[number]) => `  ${pad(k, 22)} ${lpad(ms(v.time_s), 11)} ${lpad(ms(v.compute_s), 11)} ${lpad(ms(v.weight_comm_s), 13)} ${lpad(ms(v.activation_comm_s), 11)}`;
  if (layers.length > show) {
    // the first and the last layers, the ones left out marked where they are
    for (const l of layers.slice(0, show - 2)) L.push(row(l));
    L.push(`  … ${layers.length - show} more (--json for all)`);
    for (const l of layers.slice(-2)) L.push(row(l));
  } else for (const l of layers) L.push(row(l));
  L.push('');
  L.push('collectives (per step)');
  if (!r.collectives.length) L.push('  none');
  for (const c of r.collectives) L.push(`  ${pad(c.kind, 15)} over ${pad(c.axes, 12)} ${lpad(String(c.count), 5)}×  ${lpad(gb(c.bytes), 10)}  ${lpad(ms(c.time_s), 11)}  ${c.weights ? 'weights/gradients' : 'activations'}`);
  L.push('');
  L.push(`settings: matmul efficiency ${r.settings.matmul_efficiency}, overlap ${r.settings.overlap}, precision ${r.settings.precision}; ${r.settings.train_cost}`);
  return L.join('\n') + '\n';
}

export function formatRanked(plans: readonly RankedPlan[]): string {
  const w = Math.max(22, ...plans.map((p) => p.mesh.length));
  const L = [`${pad('#', 3)} ${pad('mesh', w)} ${pad('strategy', 9)} ${lpad('step', 11)} ${lpad('tok/s/chip', 11)} ${lpad('MFU', 6)} ${lpad('mem/chip', 10)}  why`];
  plans.forEach((p, i) => {
    const r = p.result;
    L.push(
      `${pad(String(i + 1), 3)} ${pad(p.mesh, w)} ${pad(p.strategy, 9)} ${lpad(r ? ms(r.step_time_s) : '-', 11)} ${lpad(r ? r.tokens_per_s_per_chip.toFixed(0) : '-', 11)} ${lpad(r ? (100 * r.mfu).toFixed(1) + '%' : '-', 6)} ${lpad(r ? gb(r.memory_per_chip_bytes) : '-', 10)}  ${p.rejected ? 'rejected: ' + p.rejected : p.reason}`,
    );
  });
  return L.join('\n') + '\n';
}

/** A token budget as people write it: 13T, 1.5T, 250B, 10B, 500M. */
export function tokenCount(n: number): string {
  for (const [unit, v] of [['T', 1e12], ['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (n >= v) return `${Number((n / v).toPrecision(3))}${unit}`;
  }
  return String(n);
}
