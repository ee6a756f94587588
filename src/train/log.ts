/**
 * `train_log.jsonl`, the per-step log `lapidary train` writes: one JSON object a line, the `StepLog` of a step
 * (`step` a positive integer; the loss terms, `grad_norm`, `lr`, `ms`, `tokens_per_s` numbers — `null` where
 * JSON has no number).
 */
import * as fs from 'fs';

const REQUIRED = ['step', 'loss', 'grad_norm', 'lr', 'ms', 'tokens_per_s'];
const OPTIONAL = ['ce_loss', 'distill_loss', 'distill_kl'];
const KEYS = new Set([...REQUIRED, ...OPTIONAL]);

/** One line in the exact shape `lapidary train` writes, or undefined. */
export function parseLogLine(line: string): { step: number } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!REQUIRED.every((k) => k in o) || !Object.keys(o).every((k) => KEYS.has(k))) return undefined;
  if (!Number.isInteger(o.step) || (o.step as number) < 1) return undefined;
  if (!Object.values(o).every((x) => x === null || typeof x === 'number')) return undefined;
  return o as { step: number };
}

/**
 * A last line cut short while `lapidary train` wrote it (the run killed mid-write): not JSON, and the start of a
 * line of ours (each begins `{"step":<digits>`). A complete but foreign object is not a cut line.
 */
function isCutLine(line: string): boolean {
  try {
    JSON.parse(line);
    return false;
  } catch {
    // not complete JSON: may be a cut line
  }
  const head = '{"step":';
  if (line.length <= head.length) return line.length > 0 && head.startsWith(line);
  return /^\{"step":[1-9]/.test(line);
}

/**
 * True when `file` is a log `lapidary train` could have written: empty (created, nothing logged yet), or every
 * line a step of ours, the last one possibly cut short (a run killed while writing it, as resume tolerates).
 */
export function isTrainLog(file: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  if (text === '') return true;
  const lines = text.split('\n');
  const last = lines.pop()!;
  if (!lines.every((l) => parseLogLine(l) !== undefined)) return false;
  return last === '' || parseLogLine(last) !== undefined || isCutLine(last);
}

/**
 * Resuming from the checkpoint of step `step`: drop the log's trailing lines of later steps (written after that
 * save, before the run stopped), which the resumed run writes again. Only the tail is cut, and only lines in our
 * shape (a --log shared with other text keeps it). Returns the number of lines dropped.
 */
export function truncateLogAfter(file: string, step: number): number {
  if (!fs.existsSync(file)) return 0;
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let keep = lines.length;
  // a last line cut short (the run killed while writing it): not a step, dropped with the stale tail
  if (!text.endsWith('\n') && keep > 0 && !parseLogLine(lines[keep - 1])) keep--;
  while (keep > 0) {
    const l = parseLogLine(lines[keep - 1]);
    if (!l || l.step <= step) break;
    keep--;
  }
  if (keep === lines.length) return 0;
  fs.writeFileSync(file, lines.slice(0, keep).map((l) => l + '\n').join(''));
  return lines.length - keep;
}
