/** QA: a word outside the tokenizer's vocabulary is its unknown token (as Hugging Face tokenizers map it). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadTokenizer } from '../../src/backends/cpu/tokenizer';
import { lapidary, expectCleanFailure } from '../cli/helpers';

const WORD = path.join(__dirname, '../fixtures/word-tokenizer');
const TINY = path.join(__dirname, '../fixtures/gemma2-tiny');
let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-tok-qa-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A folder with the word tokenizer, edited by `edit` (and optionally the tiny checkpoint). */
function tokDir(name: string, edit: (tj: any) => void, checkpoint = false): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const tj = JSON.parse(fs.readFileSync(path.join(WORD, 'tokenizer.json'), 'utf8'));
  edit(tj);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  if (checkpoint) for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  return dir;
}

test("WordLevel with unk_token: unknown words encode as the unk id (<unk> = 6)", async () => {
  const t = await loadTokenizer(WORD, '--prompt');
  expect(t.encode('dog')).toEqual([2, 6]);
  expect(t.encode('the dog sat')).toEqual([2, 3, 6, 5]);
  expect(t.encode('the cat sat')).toEqual([2, 3, 4, 5]);
});

test('unk_token given only in tokenizer_config.json is used too', async () => {
  const dir = tokDir('cfg-unk', (tj) => delete tj.model.unk_token);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ unk_token: '<unk>' }));
  const t = await loadTokenizer(dir, '--prompt');
  expect(t.encode('dog')).toEqual([2, 6]);
});

test('a tokenizer without an unknown token still refuses a word it lacks, and says why', async () => {
  const dir = tokDir('no-unk', (tj) => delete tj.model.unk_token);
  const t = await loadTokenizer(dir, '--prompt');
  expect(() => t.encode('dog')).toThrow(/gives no id for token 1 \("dog"\) of the prompt, and it declares no unknown token/);
});

test('generate --prompt "dog" runs with a tokenizer that declares <unk>; without one it is a clean error', () => {
  const ok = tokDir('ck-unk', () => undefined, true);
  const r = lapidary(['generate', 'gemma2.model', '--checkpoint', ok, '--prompt', 'dog', '--max-new-tokens', '1']);
  expect(r.code).toBe(0);
  expect(r.stderr).not.toMatch(/error|no id/);
  const bad = tokDir('ck-no-unk', (tj) => delete tj.model.unk_token, true);
  const f = lapidary(['generate', 'gemma2.model', '--checkpoint', bad, '--prompt', 'dog', '--max-new-tokens', '1']);
  expectCleanFailure(f);
  expect(f.stderr).toMatch(/no id for token 1 \("dog"\).*declares no unknown token/);
});
