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

/** Load `dir/tokenizer.json` (and `tokenizer_config.json` when present). `needed` names the option that needs it. */
export async function loadTokenizer(dir: string, needed: string): Promise<TextTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new ExecError(`${needed} needs a tokenizer: ${file} does not exist (give token ids with --prompt-ids instead)`);
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(readJson(file), cfg);
  } catch (e) {
    throw new ExecError(`${file}: cannot build a tokenizer from it (${(e as Error).message})`);
  }
  // Ids the decoder knows: its vocabulary and the added tokens.
  const added = new Set(tok.get_added_tokens_decoder().keys());
  const known = (id: number) => tok.id_to_token(id) !== undefined || added.has(id);
  return {
    encode: (text) => {
      const e = tok.encode(text);
      const bad = e.ids.findIndex((id) => typeof id !== 'number');
      if (bad >= 0) throw new ExecError(`${file}: the tokenizer gives no id for token ${bad} (${JSON.stringify(e.tokens?.[bad])}) of the prompt`);
      return e.ids;
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
