/**
 * Creating output folders. `fs.mkdirSync(dir, { recursive: true })` spins forever under /proc on Node 20 (and a
 * failure deep in it surfaced as an internal error); this creates the missing levels one at a time, and every
 * failure is a UserError naming the option and the level that could not be made.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from './errors';

/** A file-system error in words (the code's meaning, else Node's message). */
export const errText = (e: unknown) => {
  const x = e as NodeJS.ErrnoException;
  return x?.code === 'ENOENT' ? 'no such file or directory' : x?.code === 'EACCES' || x?.code === 'EPERM' ? 'permission denied' : x?.code === 'ENOSPC' ? 'no space left on the device' : x?.code === 'ENOTDIR' ? 'a part of the path is not a directory' : (x?.message ?? String(e));
};

/**
 * Make `dir` and its missing parents; `option` names where the path came from (`-o`, `--out`, `--dump-dir`).
 * With `parents: false` only `dir` itself may be missing: a missing parent directory is an error (as for output files).
 */
export function ensureDir(dir: string, option: string, { parents = true }: { parents?: boolean } = {}): void {
  const missing: string[] = [];
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) {
    missing.push(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  if (fs.existsSync(d) && !fs.statSync(d).isDirectory()) throw new UserError(`${option} '${dir}': '${d}' exists and is not a directory`);
  if (!parents && missing.length > 1) throw new UserError(`${option} '${dir}': the directory '${path.dirname(path.resolve(dir))}' does not exist`);
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m);
    } catch (e) {
      throw new UserError(`${option} '${dir}': cannot create '${m}': ${errText(e)}`);
    }
  }
}

/**
 * Write `text` to `file` through a temporary file beside it and a rename, so a failed run never leaves a half-written
 * file. The temporary file is dot-named per process and created exclusively (`wx`): no file of the user's, whatever
 * its name, is overwritten on the way. Errors name the option the path came from.
 */
export function writeFileAtomic(file: string, text: string, option: string): void {
  let tmp = '';
  for (let k = 0; ; k++) {
    tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}${k ? '.' + k : ''}.tmp`);
    try {
      fs.writeFileSync(tmp, text, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`${option}: cannot write '${file}': ${errText(e)}`);
    }
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new UserError(`${option}: cannot write '${file}': ${errText(e)}`);
  }
}
