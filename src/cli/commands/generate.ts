/** `lapidary generate`: autoregressive decoding on the CPU backend (KV cache when the graph's attention is fused). */
import { Command, Option } from 'commander';
import { addModelOptions, ModelOptions, positiveInt } from '../load';
import { UserError } from '../errors';
import { initCpuBackend, BackendKind } from '../../backends/cpu';
import { generate } from '../../backends/cpu/generate';
import { checkIdRows, eosIds, vocabSize } from '../../backends/cpu/session';
import { loadParams, unusedTensorsWarning } from '../../checkpoint/load';
import { openCheckpoint } from '../../checkpoint';
import { asUserErrors, checkpointDir, loadPipelineGraph, seedArg, tfjsBackendOption } from './run';
import { addPipelineOptions, PipelineCliOptions } from './compile';
import { loadTokenizer } from '../../backends/cpu/tokenizer';

interface GenerateOptions extends ModelOptions, PipelineCliOptions {
  checkpoint: string;
  promptIds?: string;
  prompt?: string;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  json?: boolean;
  cache?: boolean;
  tfjsBackend: BackendKind;
}

const num = (opt: string, check: (n: number) => boolean, want: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UserError(`option ${opt} takes ${want}, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  addModelOptions(
    addPipelineOptions(
      program
        .command('generate')
        .description('generate tokens from a prompt on a Hugging Face checkpoint (CPU, tfjs): greedy or sampled')
        .argument('<file>', 'model file')
        .requiredOption('--checkpoint <dir>', 'checkpoint folder (config.json + safetensors; tokenizer.json for --prompt)')
        .option('--prompt-ids <ids>', 'prompt token ids, comma-separated: 2,651,6037')
        .option('--prompt <text>', 'prompt text (needs tokenizer.json in the checkpoint folder)')
        .addOption(new Option('--max-new-tokens <n>', 'stop after n new tokens').argParser(positiveInt('--max-new-tokens')).makeOptionMandatory())
        .addOption(new Option('--temperature <t>', 'sampling temperature; 0 = greedy').argParser(num('--temperature', (n) => n >= 0, 'a number >= 0')))
        .addOption(new Option('--top-k <k>', 'sample among the k most likely tokens').argParser(positiveInt('--top-k')))
        .addOption(new Option('--top-p <p>', 'sample among the most likely tokens whose probabilities sum to p').argParser(num('--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]')))
        .addOption(new Option('--seed <s>', 'random seed for sampling (a 32-bit integer)').argParser(seedArg('--seed')).default(0))
        .option('--no-cache', 'recompute the whole prefix at every step instead of using the KV cache')
        .option('--json', 'print {"ids": [...], "tokens_per_s": ..}')
        .addOption(tfjsBackendOption()),
    ),
    { dims: false },
  ).action((file: string, opts: GenerateOptions) =>
    asUserErrors(async () => {
      if ((opts.prompt !== undefined) === (opts.promptIds !== undefined)) throw new UserError('give exactly one of --prompt-ids and --prompt');
      if (opts.prompt === '' || opts.promptIds?.trim() === '') throw new UserError(`${opts.prompt === '' ? '--prompt' : '--prompt-ids'} is empty: the prompt needs at least one token`);
      if ((opts.topK !== undefined || opts.topP !== undefined) && !(opts.temperature && opts.temperature > 0)) {
        throw new UserError('--top-k and --top-p apply to sampling: also give --temperature > 0');
      }
      const dir = checkpointDir(opts.checkpoint);
      await initCpuBackend(opts.tfjsBackend);
      const ck = openCheckpoint(opts.checkpoint);
      const g = loadPipelineGraph(file, opts, dir);
      const tok = opts.prompt !== undefined ? await loadTokenizer(dir, '--prompt') : undefined;
      let prompt: number[];
      if (tok) {
        // The tokenizer's ids must exist in the model (a tokenizer.json of another vocabulary was an internal error).
        const v = vocabSize(g);
        const ids = tok.encode(opts.prompt!);
        const out = ids.findIndex((x) => v !== undefined && x >= v);
        if (out >= 0) throw new UserError(`--prompt: tokenizer.json gives id ${ids[out]} (token ${out}), but the model's vocabulary has ${v} ids: the tokenizer does not belong to this checkpoint`);
        prompt = ids;
      } else {
        const parts = opts.promptIds!.split(',').map((s) => s.trim());
        const ids = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
        const bad = ids.findIndex((x) => Number.isNaN(x));
        if (bad >= 0) throw new UserError(`--prompt-ids: '${parts[bad]}' (item ${bad}) is not a token id; expected comma-separated integers like 2,651,6037`);
        prompt = checkIdRows([ids], '--prompt-ids', vocabSize(g))[0];
      }
      process.stderr.write(unusedTensorsWarning(g, ck));
      const params = loadParams(g, ck);
      try {
        const r = generate(g, params, prompt, {
          maxNewTokens: opts.maxNewTokens,
          temperature: opts.temperature,
          topK: opts.topK,
          topP: opts.topP,
          seed: opts.seed,
          eos: eosIds(dir),
          cache: opts.cache === false ? false : undefined,
          onToken: opts.json || tok ? undefined : (id) => process.stdout.write(`${id} `),
        });
        const tokens_per_s = Math.round((r.newIds.length / ((r.prefillMs + r.decodeMs) / 1000)) * 10) / 10;
        if (opts.json) {
          process.stdout.write(JSON.stringify({ ids: r.ids, tokens_per_s, ...(tok ? { text: newText(tok, prompt, r.newIds) } : {}) }) + '\n');
        } else if (tok) {
          process.stdout.write(`${opts.prompt}${newText(tok, prompt, r.newIds)}\n`);
        } else process.stdout.write('\n');
        process.stderr.write(`${r.newIds.length} tokens, ${tokens_per_s} tokens/s (${r.usedCache ? 'KV cache' : 'full recomputation'})\n`);
      } finally {
        params.forEach((t) => t.dispose());
      }
    }),
  );
}

/**
 * The new text as it reads after the prompt: decoded together with the prompt (decoding the new ids alone drops
 * the space a word-start token carries, so 'hello world' + 'w7' printed 'hello worldw7'), minus the prompt's own
 * decoding when it is a prefix; else the new ids decoded alone.
 */
export function newText(tok: { decode(ids: number[]): string }, prompt: number[], newIds: number[]): string {
  const before = tok.decode(prompt);
  const all = tok.decode([...prompt, ...newIds]);
  return all.startsWith(before) ? all.slice(before.length) : tok.decode(newIds);
}
