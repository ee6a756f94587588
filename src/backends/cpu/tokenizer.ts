/** Text in and out for `generate`: the checkpoint folder's Hugging Face `tokenizer.json` (via @huggingface/tokenizers). */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ExecError } from './index';

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

function readJson(file: string): object {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ExecError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The id of the tokenizer's unknown token: the model's own (`model.unk_token`, or `model.unk_id` for Unigram),
 * else `tokenizer_config.json`'s `unk_token`; undefined when it declares none (or names a token it lacks).
 */
function unknownTokenId(json: object, cfg: object, tok: Tokenizer): number | undefined {
  const model = (json as { model?: { unk_token?: unknown; unk_id?: unknown } }).model ?? {};
  const fromLib = (tok as unknown as { model?: { unk_token_id?: unknown } }).model?.unk_token_id;
  if (typeof fromLib === 'number') return fromLib;
  if (typeof model.unk_id === 'number' && tok.id_to_token(model.unk_id) !== undefined) return model.unk_id;
  const name = (t: unknown) => (typeof t === 'string' ? t : typeof t === 'object' && t !== null && typeof (t as { content?: unknown }).content === 'string' ? (t as { content: string }).content : undefined);
  for (const t of [name(model.unk_token), name((cfg as { unk_token?: unknown }).unk_token)]) {
    if (t === undefined) continue;
    const id = tok.token_to_id(t);
    if (typeof id === 'number') return id;
  }
  return undefined;
}

/** Load `dir/tokenizer.json` (and `tokenizer_config.json` when present). `needed` names the option that needs it. */
export async function loadTokenizer(dir: string, needed: string): Promise<TextTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new ExecError(`${needed} needs a tokenizer: ${file} does not exist (give token ids with --prompt-ids instead)`);
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const json = readJson(file);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, cfg);
  } catch (e) {
    throw new ExecError(`${file}: cannot build a tokenizer from it (${(e as Error).message})`);
  }
  // Ids the decoder knows: its vocabulary and the added tokens.
  const added = new Set(tok.get_added_tokens_decoder().keys());
  const known = (id: number) => tok.id_to_token(id) !== undefined || added.has(id);
  const unk = unknownTokenId(json, cfg, tok);
  return {
    encode: (text) => {
      const e = tok.encode(text);
      // A word outside the vocabulary is the tokenizer's unknown token, as Hugging Face tokenizers map it (the
      // library leaves it without an id for WordLevel models, whose `unk_token` it does not read).
      const ids = e.ids.map((id) => (typeof id === 'number' ? id : unk));
      const bad = ids.findIndex((id) => typeof id !== 'number');
      if (bad >= 0) throw new ExecError(`${file}: the tokenizer gives no id for token ${bad} (${JSON.stringify(e.tokens?.[bad])}) of the prompt, and it declares no unknown token (unk_token)`);
      return ids as number[];
    },
    decode: (ids) => {
      // An id the tokenizer does not know (a model vocabulary padded beyond the tokenizer's) crashed its decoder:
      // such ids print as <id N>, the runs between them decode as usual.
      if (ids.every(known)) return tok.decode([...ids], { skip_special_tokens: true });
      let out = '';
      let run: number[] = [];
      for (const id of [...ids, -1]) {
        if (id >= 0 && known(id)) {
          run.push(id);
          continue;
        }
        if (run.length) out += tok.decode(run, { skip_special_tokens: true });
        run = [];
        if (id >= 0) out += `<id ${id}>`;
      }
      return out;
    },
  };
}
