import * as path from 'path';
import { loadTokenizer } from '../../src/backends/cpu/tokenizer';

const DIR = path.join(__dirname, '../fixtures/word-tokenizer');

test('tokenizer.json: encode adds the template specials, decode skips them', async () => {
  const t = await loadTokenizer(DIR, '--prompt');
  expect(t.encode('the cat sat')).toEqual([2, 3, 4, 5]);
  expect(t.decode([3, 4, 1])).toBe('the cat');
});

test('a missing tokenizer.json names the file and the way out', async () => {
  await expect(loadTokenizer(__dirname, '--prompt')).rejects.toThrow(/--prompt needs a tokenizer: .*tokenizer\.json does not exist \(give token ids with --prompt-ids instead\)/);
});

test('generate prints the new text as it reads after the prompt (decoded alone, a word-start token lost its space)', async () => {
  const { newText } = await import('../../src/cli/commands/generate');
  const t = await loadTokenizer(DIR, '--prompt');
  const prompt = t.encode('the cat');
  expect(t.decode([5])).toBe('sat');
  expect(newText(t, prompt, [5])).toBe(' sat');
});

test('ids the tokenizer does not know (a model vocabulary larger than the tokenizer) decode as <id N>, not a crash', async () => {
  const t = await loadTokenizer(DIR, '--prompt');
  expect(t.decode([3, 400, 4])).toBe('the<id 400>cat');
});
