/**
 * `lapidary distill-targets`: run a teacher on CPU over a token file and write, per token, K vocabulary ids with
 * their probabilities (top-k or sampled) in safetensors shards, resumably, for `lapidary train --targets`.
 */
import * as path from 'path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadModel, addModelOptions, ModelOptions, positiveInt } from '../load';

import { initCpuBackend, BackendKind } from '../../backends/cpu';
import { vocabSize } from '../../backends/cpu/session';
import { loadParams, unusedTensorsWarning } from '../../checkpoint/load';
import { openCheckpoint } from '../../checkpoint';
import { asUserErrors, seedArg, tfjsBackendOption } from './run';
import { readTokens } from '../../train/data';
import { makeTargets, modelRecord, teacherFingerprint } from '../../train/targets';
import { num } from './train';

interface TargetsCliOptions extends ModelOptions {
  checkpoint: string;
  tokens: string;
  k: number;
  strategy: 'topk' | 'sample';
  out: string;
  seq: number;
  batch: number;
  temperature: number;
  shardWindows: number;
  maxSequences?: number;
  seed: number;
  tfjsBackend: BackendKind;
}

// Digits only (shared with --batch/--seq of the other commands): '1e3' or '0x10' are not read as numbers.
const posInt = positiveInt;

export function register(program: Command): void {
  addModelOptions(
    program
      .command('distill-targets')
      .description('run a teacher over a token file and store K sampled/top-k vocabulary ids with probabilities per token (safetensors shards, resumable)')
      .argument('<file>', 'model file of the teacher')
      .requiredOption('--checkpoint <dir>', 'the teacher: a Hugging Face checkpoint folder (config.json + safetensors)')
      .requiredOption('--tokens <data>', 'token file: .json, .bin/.u32 (uint32 LE) or .u16 (uint16 LE)')
      .addOption(new Option('--k <k>', 'vocabulary entries kept per token').argParser(posInt('--k')).makeOptionMandatory())
      .addOption(new Option('--strategy <s>', 'topk: the K most likely ids; sample: K draws, stored as ids with frequencies').choices(['topk', 'sample']).default('topk'))
      .requiredOption('--out <dir>', 'output folder (an unfinished run there is resumed)')
      .addOption(new Option('--seq <n>', 'tokens per sequence (must match `train --seq`)').argParser(posInt('--seq')).makeOptionMandatory())
      .addOption(new Option('--batch <n>', 'sequences per teacher forward').argParser(posInt('--batch')).default(8))
      .addOption(new Option('--temperature <t>', 'teacher temperature').argParser(num('--temperature', (n) => n > 0, 'a number > 0')).default(1))
      .addOption(new Option('--shard-windows <n>', 'sequences per shard').argParser(posInt('--shard-windows')).default(256))
      .addOption(new Option('--max-sequences <n>', 'only the first n sequences of the token file').argParser(posInt('--max-sequences')))
      .addOption(new Option('--seed <s>', 'seed for --strategy sample').argParser(seedArg('--seed')).default(0))
      .addOption(tfjsBackendOption()),
    { dims: false },
  ).action((file: string, opts: TargetsCliOptions) =>
    asUserErrors(async () => {
      await initCpuBackend(opts.tfjsBackend);
      const ck = openCheckpoint(opts.checkpoint);
      const configFile = opts.config ?? path.join(opts.checkpoint, 'config.json');
      const g = loadModel(file, { variant: opts.variant, config: configFile, hparam: opts.hparam }, { batch: opts.batch, seq: opts.seq });
      const V = vocabSize(g);
      const data = readTokens(opts.tokens, V);
      process.stderr.write(unusedTensorsWarning(g, ck));
      const params = loadParams(g, ck);
      const tty = !!process.stderr.isTTY;
      const bar = tty ? new SingleBar({ format: 'teacher {bar} {value}/{total} sequences | {skipped} already done | eta {eta_formatted}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : undefined;
      let started = false;
      let lastPct = -1;
      try {
        const meta = makeTargets(g, params, data, {
          out: opts.out,
          k: opts.k,
          strategy: opts.strategy,
          temperature: opts.temperature,
          seq: opts.seq,
          batch: opts.batch,
          windowsPerShard: opts.shardWindows,
          maxWindows: opts.maxSequences,
          seed: opts.seed,
          teacher: path.resolve(opts.checkpoint),
          // What the folder's targets.json records so a resumed run with another teacher is refused.
          teacherFingerprint: teacherFingerprint(ck.files, configFile),
          model: modelRecord(file, opts.variant, { ...opts.hparam }),
          onWarning: (m) => process.stderr.write(`lapidary: warning: ${m}\n`),
          onNote: (m) => process.stderr.write(`lapidary: note: ${m}\n`),
          onProgress: (done, total, skipped) => {
            if (bar) {
              if (!started) bar.start(total, 0, { skipped });
              started = true;
              bar.update(done, { skipped });
            } else {
              const pct = Math.floor((100 * done) / total / 25) * 25;
              if (pct !== lastPct) process.stderr.write(`teacher targets: ${done}/${total} sequences${skipped ? ` (${skipped} already done)` : ''}\n`);
              lastPct = pct;
            }
          },
        });
        bar?.stop();
        process.stderr.write(`wrote ${opts.out}: ${meta.windows} sequences × ${meta.seq} tokens × K = ${meta.k} (${meta.strategy})\n`);
      } catch (e) {
        bar?.stop();
        throw e;
      } finally {
        params.forEach((t) => t.dispose());
      }
    }),
  );
}
