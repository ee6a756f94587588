/**
 * `lapidary train`: train a model file on CPU (tfjs) — label cross-entropy and/or distillation from teacher
 * targets, AdamW — and write a Hugging Face-layout checkpoint that `lapidary run` loads; resumes from it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadModel, addModelOptions, ModelOptions, positiveInt, readJsonFile, readModelSource } from '../load';
import { compileModel, modelInfo } from '../../../grammar';
import { UserError } from '../errors';
import { initCpuBackend, BackendKind, ParamStore } from '../../backends/cpu';
import { vocabSize } from '../../backends/cpu/session';
import { loadParams, unusedTensorsWarning } from '../../checkpoint/load';
import { openCheckpoint, readSafetensorsHeader } from '../../checkpoint';
import { asUserErrors, seedArg, tfjsBackendOption } from './run';
import { checkOutputFile } from './compile';
import { Graph, ShapeError } from '../../ir';
import { hfConfigFor, hparamDiff } from '../../train/hfconfig';
import { REMAT_POLICIES, RematPolicy } from '../../train/autodiff';
import { readTokens, readTargetsMeta, TargetsReader, windowCount, validateTargetShards } from '../../train/data';
import { Trainer, zeroState, OptimizerState, StepLog, learningRate, ScheduleOptions } from '../../train/trainer';
import { isTrainLog, truncateLogAfter } from '../../train/log';
import { initParams, saveCheckpoint, readTrainerState, loadOptimizerState, TrainerState } from '../../train/ckpt';
import { ensureDir } from '../../fsutil';

interface TrainOptions extends ModelOptions {
  hparam?: Record<string, number | boolean | string>;
  data: string;
  steps: number;
  lr: number;
  batch: number;
  seq: number;
  out: string;
  checkpoint?: string;
  targets?: string;
  distillWeight?: number;
  temperature: number;
  renormalize: boolean;
  warmup: number;
  schedule: 'constant' | 'cosine';
  weightDecay: number;
  clip?: number;
  beta1: number;
  beta2: number;
  remat: RematPolicy;
  seed: number;
  saveEvery?: number;
  log?: string;
  resume: boolean;
  tfjsBackend: BackendKind;
}

export const num = (opt: string, check: (n: number) => boolean, want: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UserError(`option ${opt} takes ${want}, got '${v}'`);
  return n;
};
// Digits only (shared with --batch/--seq of the other commands): '1e3' or '0x10' are not read as numbers.
const posInt = positiveInt;

export function register(program: Command): void {
  addModelOptions(
    program
      .command('train')
      .description('train on CPU (tfjs): next-token cross-entropy and/or distillation from teacher targets, AdamW; writes a Hugging Face checkpoint')
      .argument('<file>', 'model file')
      .requiredOption('--data <tokens>', 'token file: .json (array of ids, or array of arrays), .bin/.u32 (uint32 LE), .u16 (uint16 LE)')
      .addOption(new Option('--steps <n>', 'train until this many optimizer steps in total (a resumed run continues to n)').argParser(posInt('--steps')).makeOptionMandatory())
      .addOption(new Option('--lr <x>', 'peak learning rate').argParser(num('--lr', (n) => n > 0, 'a number > 0')).default(1e-3))
      .addOption(new Option('--batch <n>', 'sequences per step').argParser(posInt('--batch')).makeOptionMandatory())
      .addOption(new Option('--seq <n>', 'tokens per sequence').argParser(posInt('--seq')).makeOptionMandatory())
      .requiredOption('--out <dir>', 'checkpoint folder to write (and to resume from when it holds trainer_state.json)')
      .option('--checkpoint <dir>', 'initial weights (a Hugging Face checkpoint folder); default: random init')
      .option('--targets <dir>', 'teacher targets from `lapidary distill-targets` (same --data and --seq)')
      .addOption(new Option('--distill-weight <a>', 'α: loss = (1-α)·CE(labels) + α·τ²·distill (default 1 with --targets)').argParser(num('--distill-weight', (n) => n >= 0 && n <= 1, 'a number in [0, 1]')))
      .addOption(new Option('--temperature <t>', 'distillation temperature τ (student logits / τ; teacher targets as stored)').argParser(num('--temperature', (n) => n > 0, 'a number > 0')).default(1))
      .option('--no-renormalize', 'use the stored teacher probabilities as they are (default: renormalise the K entries to sum to 1)')
      .addOption(new Option('--warmup <n>', 'linear learning-rate warm-up steps').argParser(num('--warmup', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0')).default(0))
      .addOption(new Option('--schedule <s>', 'learning rate after warm-up').choices(['constant', 'cosine']).default('constant'))
      .addOption(new Option('--weight-decay <w>', 'AdamW decoupled weight decay (matrices only)').argParser(num('--weight-decay', (n) => n >= 0, 'a number >= 0')).default(0))
      .addOption(new Option('--clip <c>', 'clip the global gradient norm to c').argParser(num('--clip', (n) => n > 0, 'a number > 0')))
      .addOption(new Option('--beta1 <b>', 'AdamW β1').argParser(num('--beta1', (n) => n >= 0 && n < 1, 'a number in [0, 1)')).default(0.9))
      .addOption(new Option('--beta2 <b>', 'AdamW β2').argParser(num('--beta2', (n) => n >= 0 && n < 1, 'a number in [0, 1)')).default(0.999))
      .addOption(new Option('--remat <policy>', 'what the backward keeps from the forward').choices([...REMAT_POLICIES]).default('save-all'))
      .addOption(new Option('--seed <s>', 'seed of the random init').argParser(seedArg('--seed')).default(0))
      .addOption(new Option('--save-every <n>', 'also write the checkpoint every n steps').argParser(posInt('--save-every')))
      .option('--log <file>', 'append one JSON line per step (default: <out>/train_log.jsonl)')
      .option('--no-resume', 'start over even if --out holds a training state')
      .addOption(tfjsBackendOption()),
    { dims: false },
  ).action((file: string, opts: TrainOptions, cmd: Command) =>
    asUserErrors(() => train(file, opts, (o) => cmd.getOptionValueSource(o) !== undefined && cmd.getOptionValueSource(o) !== 'default')),
  );
}

/** The files `train` writes into --out (model.safetensors.index.json: a sharded checkpoint there would shadow ours). */
const WRITTEN = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'optimizer.safetensors', 'trainer_state.json', 'train_log.jsonl'];

/**
 * --out must be a new folder, an empty one, or one `lapidary train` wrote (it holds trainer_state.json or, after
 * a crash between saves, optimizer.safetensors; or, from a first run stopped before its first save, nothing of
 * ours but a train_log.jsonl in the shape train writes (empty, or a last line cut off by a kill, allowed: `isTrainLog`) — that run starts over). A folder of the user's own files with the names train writes
 * (a downloaded checkpoint, say) is refused before any work — it was silently overwritten after training.
 */
export function checkTrainOut(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new UserError(`--out '${out}' is a file; give a folder for the checkpoint`);
  if (writtenByTrain(out)) return;
  const clash = WRITTEN.filter((f) => fs.existsSync(path.join(out, f)));
  // A first run stopped before its first checkpoint leaves only its log: ours when it reads as our log (`isTrainLog`: a cut-off last line or an empty file included).
  if (clash.length === 1 && clash[0] === 'train_log.jsonl' && isTrainLog(path.join(out, clash[0]))) return;
  if (clash.length) {
    throw new UserError(`--out '${out}' holds ${clash.join(', ')} that \`lapidary train\` did not write (no trainer_state.json); refusing to overwrite: give a new or empty folder (to start from those weights, pass it as --checkpoint)`);
  }
}

/**
 * Ours: a trainer_state.json that is a JSON object with a numeric `step`, or (after a crash between saves) an
 * optimizer.safetensors whose tensors are all Adam moments `adam.m.*` / `adam.v.*`. A file that merely has one of
 * those names is not enough (a user's own optimizer.safetensors was overwritten).
 */
function writtenByTrain(out: string): boolean {
  try {
    const st = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
    if (st !== null && typeof st === 'object' && typeof st.step === 'number') return true;
  } catch {
    // not there, or not ours
  }
  try {
    const names = [...readSafetensorsHeader(path.join(out, 'optimizer.safetensors')).tensors.keys()];
    return names.length > 0 && names.every((n) => n.startsWith('adam.m.') || n.startsWith('adam.v.'));
  } catch {
    return false;
  }
}

async function train(file: string, opts: TrainOptions, given: (option: string) => boolean): Promise<void> {
  if (opts.checkpoint && fs.existsSync(opts.out) && fs.existsSync(opts.checkpoint) && fs.realpathSync(opts.out) === fs.realpathSync(opts.checkpoint) && !writtenByTrain(opts.out)) {
    throw new UserError(`--out '${opts.out}' is the --checkpoint folder; training writes a new checkpoint: give another --out folder (the starting weights stay where they are)`);
  }
  checkTrainOut(opts.out);
  if (opts.log) checkOutputFile(opts.log, [file, opts.data], '--log');
  await initCpuBackend(opts.tfjsBackend);
  const prev = opts.resume ? readTrainerState(opts.out) : undefined;
  const configPath = opts.config ?? (prev ? path.join(opts.out, 'config.json') : opts.checkpoint ? path.join(opts.checkpoint, 'config.json') : undefined);
  if (!configPath && !opts.variant && !opts.hparam) {
    throw new UserError('train needs the model sizes: give --variant <name> (with --hparam name=value to change sizes), --config <config.json> (Hugging Face keys) or --checkpoint <dir> with a config.json');
  }
  const base = configPath ? readJsonFile(configPath, 'config') : {};
  if (typeof base !== 'object' || base === null || Array.isArray(base)) throw new UserError(`config '${configPath}' must be a JSON object`);
  if (opts.seq < 2) throw new UserError(`--seq ${opts.seq}: a training sequence needs at least 2 tokens (each token is trained to predict the next)`);
  if (prev && (prev.batch !== opts.batch || prev.seq !== opts.seq)) {
    throw new UserError(`${opts.out} holds a run with --batch ${prev.batch} --seq ${prev.seq}; resume with the same values, or pass --no-resume to start over`);
  }
  const graph = (() => {
    try {
      return loadModel(file, { variant: opts.variant, config: configPath, hparam: opts.hparam }, { batch: opts.batch, seq: opts.seq });
    } catch (e) {
      if (e instanceof ShapeError) throw new UserError(e.message);
      throw e;
    }
  })();
  // Resuming continues the run that was saved: a hyperparameter changed by --hparam or another --config (a window,
  // a soft-cap: no tensor shape tells) would silently train another model from those weights.
  if (prev) {
    const saved = (() => {
      try {
        return loadModel(file, { config: path.join(opts.out, 'config.json') }, { batch: opts.batch, seq: opts.seq });
      } catch {
        return undefined;
      }
    })();
    const changed = saved ? hparamDiff(saved.hparams, graph.hparams) : [];
    if (changed.length) {
      const what = changed.map((k) => `${k} ${JSON.stringify(saved!.hparams[k])} → ${JSON.stringify(graph.hparams[k])}`).join(', ');
      throw new UserError(`${opts.out} holds a run with other hyperparameters than this call (${what}); resume without changing them, or pass --no-resume to start over`);
    }
  }
  // The checkpoint's config.json: the sizes actually trained, through the model file's `config {}` mapping
  // read backwards (so a variant and --hparam overrides need no config file, and `lapidary run` loads it).
  const config = checkpointConfig(file, graph, base as Record<string, unknown>, opts);
  const data = readTokens(opts.data, vocabSize(graph));
  const nw = windowCount(data, opts.seq);
  if (nw < 1) throw new UserError(`--data '${opts.data}' has ${data.ids.length} tokens: fewer than one sequence of --seq ${opts.seq}`);
  if (prev && prev.data.hash !== data.hash) throw new UserError(`${opts.out} was trained on another token file (hash ${prev.data.hash}, --data has ${data.hash}); pass --no-resume to start over`);

  let targets: TargetsReader | undefined;
  if (opts.targets) {
    const meta = readTargetsMeta(opts.targets);
    if (meta.seq !== opts.seq) throw new UserError(`--targets '${opts.targets}' were made with --seq ${meta.seq}, training uses --seq ${opts.seq}`);
    if (meta.tokens.hash !== data.hash) throw new UserError(`--targets '${opts.targets}' belong to another token file (${meta.tokens.file}, hash ${meta.tokens.hash}) than --data '${opts.data}' (hash ${data.hash})`);
    const V = vocabSize(graph);
    if (V !== undefined && meta.vocab !== V) throw new UserError(`--targets '${opts.targets}' have a vocabulary of ${meta.vocab}, the student has ${V}`);
    if (opts.batch * opts.steps > meta.windows && meta.windows < nw) {
      process.stderr.write(`lapidary: note: targets cover ${meta.windows} of ${nw} sequences; training wraps around within those\n`);
    }
    if (meta.temperature !== opts.temperature) {
      process.stderr.write(
        `lapidary: warning: --targets were made at temperature ${meta.temperature}, and --temperature ${opts.temperature} divides the student's logits: distillation usually uses one τ for both (distill-targets --temperature ${opts.temperature}, or train --temperature ${meta.temperature})\n`,
      );
    }
    // every shard now, not at the step that first reads it (a truncated shard failed at step 12, a missing one at 24)
    validateTargetShards(opts.targets, meta);
    targets = new TargetsReader(opts.targets, meta);
  } else if (opts.distillWeight !== undefined && opts.distillWeight > 0) {
    throw new UserError('--distill-weight needs --targets <dir> (teacher targets from `lapidary distill-targets`)');
  }
  const alpha = targets ? (opts.distillWeight ?? 1) : 0;
  // Targets only cover their windows: keep the data stream to those.
  const stream = targets && targets.meta.windows < nw ? { ...data, ids: data.ids.subarray(0, targets.meta.windows * opts.seq) } : data;

  let params: ParamStore;
  let state: OptimizerState;
  let start = 0;
  if (prev) {
    // A resume needs the whole saved state: say how to start over when part of it is gone or damaged.
    const resumable = <T>(what: () => T): T => {
      try {
        return what();
      } catch (e) {
        if (e instanceof UserError) throw new UserError(`cannot resume from ${opts.out} (trainer_state.json says step ${prev.step}): ${e.message}; pass --no-resume to start over there`);
        throw e;
      }
    };
    params = resumable(() => loadParams(graph, openCheckpoint(opts.out)));
    state = resumable(() => loadOptimizerState(opts.out, params));
    start = prev.step;
    process.stderr.write(`resuming from ${opts.out} at step ${start}\n`);
  } else {
    const from = opts.checkpoint ? openCheckpoint(opts.checkpoint) : undefined;
    if (from) process.stderr.write(unusedTensorsWarning(graph, from));
    params = from ? loadParams(graph, from) : initParams(graph, opts.seed, typeof config.initializer_range === 'number' ? config.initializer_range : 0.02);
    state = zeroState(params);
  }
  if (start >= opts.steps) {
    process.stderr.write(`${opts.out} is already at step ${start} (>= --steps ${opts.steps}); nothing to do\n`);
    return;
  }
  const schedule = resumeSchedule(prev, opts, given);

  const trainer = new Trainer(graph, {
    batch: opts.batch,
    seq: opts.seq,
    targets: alpha > 0 ? targets : undefined,
    distill: alpha > 0 ? { weight: alpha, temperature: opts.temperature, renormalize: opts.renormalize } : undefined,
    optimizer: { beta1: opts.beta1, beta2: opts.beta2, weightDecay: opts.weightDecay, clipNorm: opts.clip },
    remat: opts.remat,
    schedule,
  });

  ensureDir(opts.out, '--out');
  const logFile = opts.log ?? path.join(opts.out, 'train_log.jsonl');
  // A fresh start (--no-resume over an earlier run) begins a fresh default log; an explicit --log is appended to.
  if (!prev && !opts.log) fs.rmSync(logFile, { force: true });
  // Resuming from the save of step n: lines of steps after n (logged before the run stopped) are written again.
  if (prev) {
    const dropped = truncateLogAfter(logFile, start);
    if (dropped) process.stderr.write(`dropped ${dropped} line${dropped === 1 ? '' : 's'} of steps after ${start} from ${logFile} (not in the checkpoint; they are trained again)\n`);
  }
  const tty = !!process.stderr.isTTY;
  const bar = tty ? new SingleBar({ format: 'train {bar} {value}/{total} | loss {loss} | {tps} tok/s | eta {eta_formatted}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : undefined;
  bar?.start(opts.steps, start, { loss: '-', tps: '-' });
  const every = Math.max(1, Math.floor((opts.steps - start) / 10));
  const trainerState = (step: number, last?: StepLog): TrainerState => ({
    step,
    batch: opts.batch,
    seq: opts.seq,
    data: { file: path.basename(opts.data), hash: data.hash },
    ...(opts.targets ? { targets: path.resolve(opts.targets), distill_weight: alpha, temperature: opts.temperature } : {}),
    // the schedule, so that a resume without --lr/--schedule/--warmup continues it (and a change is named)
    lr: schedule.lr,
    schedule: schedule.schedule,
    warmup: schedule.warmup,
    steps: opts.steps,
    ...(last ? { loss: last.loss } : {}),
  });
  // Ctrl-C: the first finishes the current step, saves (as --save-every would) and exits 130. A second one exits
  // at once, unsaved: from the handler when both came during one step (a step runs synchronously, so JS sees a
  // signal only between steps), else by the default action (the handler is removed before the save).
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      process.stderr.write('\nlapidary: interrupted again: exiting without saving\n');
      process.exit(130);
    }
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  let last: StepLog | undefined;
  let done = start;
  try {
    try {
      for (let s = start + 1; s <= opts.steps; s++) {
        last = trainer.run(stream, s, opts.steps, params, state);
        if (!Number.isFinite(last.loss)) throw new UserError(nonFiniteLoss(last, s, start, opts));
        fs.appendFileSync(logFile, JSON.stringify(roundLog(last)) + '\n');
        done = s;
        bar?.update(s, { loss: last.loss.toFixed(4), tps: Math.round(last.tokens_per_s) });
        if (!tty && ((s - start) % every === 0 || s === opts.steps)) process.stderr.write(`step ${s}/${opts.steps} loss ${last.loss.toFixed(4)} ${Math.round(last.tokens_per_s)} tok/s\n`);
        if (opts.saveEvery && s % opts.saveEvery === 0 && s < opts.steps) saveCheckpoint(opts.out, params, config, state, trainerState(s, last));
        // the steps run synchronously: let a pending SIGINT reach its handler between them
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (interrupted) {
          process.removeListener('SIGINT', onSigint);
          break;
        }
      }
    } finally {
      bar?.stop();
    }
    saveCheckpoint(opts.out, params, config, state, trainerState(done, last));
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  if (interrupted && done < opts.steps) {
    process.stderr.write(`lapidary: interrupted: saved ${opts.out} at step ${done} of ${opts.steps} (loss ${last!.loss.toFixed(4)}); run the same command to resume\n`);
    process.exitCode = 130;
  } else {
    process.stderr.write(`wrote ${opts.out} (step ${opts.steps}, loss ${last!.loss.toFixed(4)})\n`);
  }
  params.forEach((t) => t.dispose());
  state.m.forEach((t) => t.dispose());
  state.v.forEach((t) => t.dispose());
}

/** The message for a non-finite loss: at the first step of a run no update has happened yet, so not the --lr. */
function nonFiniteLoss(last: StepLog, s: number, start: number, opts: TrainOptions): string {
  if (s === 1) {
    const weights = opts.checkpoint ? `the starting weights (--checkpoint '${opts.checkpoint}')` : 'the random init (--seed)';
    return `the initial loss is ${last.loss} (step 1's forward, before any update): not the learning rate; the model's hyperparameters (--hparam, --config) or ${weights} are the likely cause`;
  }
  if (s === start + 1) {
    return `the loss is ${last.loss} at step ${s}, the first after resuming, before this run updated any weight: the weights saved in ${opts.out} are the likely cause, not the learning rate (pass --no-resume to start over)`;
  }
  return `the loss is ${last.loss} at step ${s} (lr ${last.lr}): training diverged; try a smaller --lr or --clip`;
}

/**
 * The learning-rate schedule of this call. A resumed run keeps the saved --lr / --schedule / --warmup unless they
 * are given (one stderr line says so); given and different, or a cosine run resumed with another --steps (the
 * cosine horizon), a warning names the change.
 */
function resumeSchedule(prev: TrainerState | undefined, opts: TrainOptions, given: (option: string) => boolean): ScheduleOptions {
  const now = { lr: opts.lr, warmup: opts.warmup, schedule: opts.schedule };
  if (!prev) return now;
  const saved = {
    lr: typeof prev.lr === 'number' && prev.lr > 0 ? prev.lr : undefined,
    warmup: typeof prev.warmup === 'number' && Number.isInteger(prev.warmup) && prev.warmup >= 0 ? prev.warmup : undefined,
    schedule: prev.schedule === 'constant' || prev.schedule === 'cosine' ? prev.schedule : undefined,
  };
  const kept: string[] = [];
  const changed: string[] = [];
  for (const key of ['lr', 'schedule', 'warmup'] as const) {
    const old = saved[key];
    if (old === undefined) continue;
    if (!given(key)) {
      (now as Record<string, unknown>)[key] = old;
      kept.push(`--${key} ${old}`);
    } else if (now[key] !== old) changed.push(`--${key} ${old} → ${now[key]}`);
  }
  if (kept.length) process.stderr.write(`continuing the saved learning-rate schedule: ${kept.join(' ')} (give them to change it)\n`);
  if (changed.length) process.stderr.write(`lapidary: warning: the learning-rate schedule changes on resume: ${changed.join(', ')}\n`);
  if (now.schedule === 'cosine' && (saved.schedule ?? 'cosine') === 'cosine' && typeof prev.steps === 'number' && prev.steps !== opts.steps) {
    const s = prev.step + 1;
    const was = learningRate(s, prev.steps, { ...now, lr: saved.lr ?? now.lr, warmup: saved.warmup ?? now.warmup });
    process.stderr.write(
      `lapidary: warning: --steps ${opts.steps} changes the cosine horizon (the saved run decays over ${prev.steps} steps): the learning rate at step ${s} is ${learningRate(s, opts.steps, now).toPrecision(4)}, not ${was.toPrecision(4)}\n`,
    );
  }
  return now;
}

function checkpointConfig(file: string, graph: Graph, base: Record<string, unknown>, opts: TrainOptions): Record<string, unknown> {
  const source = readModelSource(file);
  const info = modelInfo(source, file);
  const config = hfConfigFor(info.config, graph.hparams, base, info.configExpects);
  // Read it back as `lapidary run --checkpoint` will (no variant, no overrides): what can it not express?
  const back = compileModel(source, file, { config, dims: { batch: opts.batch, seq: opts.seq } });
  const lost = back.graph ? hparamDiff(graph.hparams, back.graph.hparams) : Object.keys(graph.hparams);
  if (lost.length) {
    const list = lost.map((h) => `'${h}' (${JSON.stringify(graph.hparams[h])}, read back as ${JSON.stringify(back.graph?.hparams[h])})`).join(', ');
    process.stderr.write(
      `lapidary: warning: the checkpoint's config.json cannot express ${list}: no key of the config {} mapping in ${file} sets ${lost.length === 1 ? 'it' : 'them'}` +
        (opts.variant ? `; load the checkpoint with --variant ${opts.variant}${opts.hparam ? ' and the same --hparam values' : ''}\n` : '\n'),
    );
  }
  return config;
}

function roundLog(l: StepLog): Record<string, number> {
  return Object.fromEntries(Object.entries(l).map(([k, v]) => [k, k === 'step' ? v : Number(v.toPrecision(7))]));
}
