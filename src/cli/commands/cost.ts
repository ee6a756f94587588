/** `lapidary cost FILE …`: plan a run on a TPU mesh and print step time, MFU, memory per chip and the breakdowns. */
import { Command } from 'commander';
import { formatPlan, formatRanked } from '../../backends/tpu';
import { addModelOptions } from '../load';
import { UserError } from '../errors';
import { addTpuOptions, runCost, TpuCliOptions } from './compile-tpu';

export function register(program: Command): void {
  addTpuOptions(
    addModelOptions(
      program
        .command('cost')
        .description('predict step time, MFU, tokens/s/chip and memory per chip of a model on a TPU mesh (--mesh auto ranks plans)')
        .argument('<file>', 'model file')
        .option('--json', 'print one JSON object (step_time_s, mfu, tokens_per_s_per_chip, memory_per_chip_bytes, fits, breakdowns); with --mesh auto {"plans": [ranked plans, each with mesh, strategy, rejected, reason and those fields]}'),
    ),
  ).action((file: string, opts: TpuCliOptions & { json?: boolean }, cmd: Command) => {
    const r = runCost(file, { ...opts, rematGiven: cmd.getOptionValueSource('remat') === 'cli' });
    if (opts.json) {
      process.stdout.write(JSON.stringify(r.plan ?? { plans: r.ranked!.map((p) => ({ mesh: p.mesh, strategy: p.strategy, reason: p.reason, rejected: p.rejected ?? null, ...(p.result ?? {}) })) }) + '\n');
    } else process.stdout.write(r.plan ? formatPlan(r.plan) : formatRanked(r.ranked!));
    // --mesh auto with nothing that fits is a failure a script can see (the table still says why each was rejected).
    if (r.ranked && !r.ranked.some((p) => p.result && !p.rejected)) {
      throw new UserError(`--mesh auto: none of the ${r.ranked.length} plans fits (see the reasons above)`);
    }
  });
}
