/**
 * Property-based tests (fast-check): whatever the input — gemma2.model with characters or tokens deleted,
 * inserted or replaced, or random text — compileModel returns instead of throwing, and every diagnostic
 * points inside the model file (but for an unknown variant, which is about the option, not the file).
 */
import fc from 'fast-check';
import { compileModel } from '../../grammar';
import { lex } from '../../grammar/lexer';
import { GEMMA2 } from './helpers';

const FILE = 'gemma2.model';
const LINES = (s: string) => s.split('\n');

function checkCompile(source: string): void {
  let r: ReturnType<typeof compileModel> | undefined;
  expect(() => {
    r = compileModel(source, FILE, { variant: '2b' });
  }).not.toThrow();
  const lines = LINES(source);
  for (const d of r!.diagnostics) {
    if (d.option !== undefined) {
      // The only option given: a mutation that removes `variant "2b"` makes it unknown (no location).
      expect(d).toMatchObject({ option: 'variant', key: '2b', code: 'unknown-variant' });
      continue;
    }
    const where = `${d.file}:${d.line}:${d.col} ${d.message}`;
    if (d.file !== FILE || d.line < 1 || d.line > lines.length || d.col < 1 || d.col > lines[d.line - 1].replace(/\r$/, '').length + 1)
      throw new Error(`diagnostic outside the file: ${where}\n--- source ---\n${source}`);
    expect(d.length).toBeGreaterThanOrEqual(1);
    expect(d.code).not.toBe('internal');
    expect(d.message).not.toMatch(/\n\s+at /);
  }
  if (r!.graph) expect(r!.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  else expect(r!.diagnostics.length).toBeGreaterThan(0);
}

const tokens = lex(GEMMA2).tokens;
const TOKEN_TEXTS = [...new Set(tokens.map((t) => t.image)), '->', '..', '**', '{', '}', '(', ')', '[', ']', ':', ';', ',', '"2b"', 'param', 'block', 'forward', 'if', 'else', 'for', 'in', 'return', '0', '-1', '1e-6', 'inf'];
const CHARS = '{}()[]:;,.=+-*/%<>!&|#"\n abc_019';

type Mutation = { kind: 'delete' | 'insert' | 'replace'; at: number; text: string };

function applyChars(src: string, ms: Mutation[]): string {
  let s = src;
  for (const m of ms) {
    const at = m.at % (s.length + 1);
    if (m.kind === 'delete') s = s.slice(0, at) + s.slice(at + 1);
    else if (m.kind === 'insert') s = s.slice(0, at) + m.text + s.slice(at);
    else s = s.slice(0, at) + m.text + s.slice(at + 1);
  }
  return s;
}

function applyTokens(ms: Mutation[]): string {
  const parts = tokens.map((t) => ({ start: t.startOffset, end: t.endOffset! + 1, text: t.image }));
  for (const m of ms) {
    const i = m.at % parts.length;
    if (m.kind === 'delete') parts[i] = { ...parts[i], text: '' };
    else if (m.kind === 'insert') parts[i] = { ...parts[i], text: `${m.text} ${parts[i].text}` };
    else parts[i] = { ...parts[i], text: m.text };
  }
  let out = '';
  let pos = 0;
  for (const p of parts) {
    out += GEMMA2.slice(pos, p.start) + p.text;
    pos = p.end;
  }
  return out + GEMMA2.slice(pos);
}

const mutation = (texts: fc.Arbitrary<string>) =>
  fc.record({ kind: fc.constantFrom<'delete' | 'insert' | 'replace'>('delete', 'insert', 'replace'), at: fc.nat(), text: texts });

describe('compileModel never throws and keeps diagnostics inside the file', () => {
  test('character mutations of gemma2.model', () => {
    fc.assert(
      fc.property(fc.array(mutation(fc.stringOf(fc.constantFrom(...CHARS.split('')), { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 4 }), (ms) =>
        checkCompile(applyChars(GEMMA2, ms)),
      ),
      { numRuns: 150 },
    );
  });

  test('token mutations of gemma2.model', () => {
    fc.assert(
      fc.property(fc.array(mutation(fc.constantFrom(...TOKEN_TEXTS)), { minLength: 1, maxLength: 3 }), (ms) => checkCompile(applyTokens(ms))),
      { numRuns: 150 },
    );
  });

  test('random strings', () => {
    fc.assert(fc.property(fc.fullUnicodeString({ maxLength: 200 }), (s) => checkCompile(s)), { numRuns: 300 });
  });

  test('random token soup', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKEN_TEXTS), { maxLength: 60 }), (ts) => checkCompile(ts.join(' '))),
      { numRuns: 300 },
    );
  });

  test('deleting any single line', () => {
    const lines = LINES(GEMMA2);
    for (let i = 0; i < lines.length; i++) checkCompile([...lines.slice(0, i), ...lines.slice(i + 1)].join('\n'));
  });
});
