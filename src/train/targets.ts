/**
 * Teacher targets for distillation: run the teacher on CPU over the token windows and store, per token, K
 * vocabulary ids with their probabilities (at temperature τ):
 *   - `topk`: the K most likely ids and their probabilities (the loss renormalises the subset by default);
 *   - `sample`: K draws with replacement from the teacher's distribution; each distinct id is stored once with
 *     its empirical frequency (count / K), unused slots get probability 0. This makes the stored subset an
 *     unbiased estimate of the full distribution (E[count/K] = p), unlike top-k, which is biased to the head.
 * Output is sharded and resumable: complete shards are kept, missing or partial ones are (re)computed.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execute, tf, ParamStore } from '../backends/cpu';
import { Graph } from '../ir';
import { UserError } from '../errors';
import { TokenStream, TargetsMeta, TARGETS_META, windowCount, windowIds, shardComplete, writeShard } from './data';
import { mulberry32 as mulberry } from '../random';
import { ensureDir } from '../fsutil';

export interface TargetsOptions {
  readonly out: string;
  readonly k: number;
  readonly strategy: 'topk' | 'sample';
  readonly temperature?: number;
  readonly seq: number;
  readonly batch: number;
  readonly windowsPerShard?: number;
  /** Only the first `maxWindows` windows (default all). */
  readonly maxWindows?: number;
  readonly seed?: number;
  readonly teacher: string;
  /** What the teacher's files were (see `teacherFingerprint`); checked against a resumed folder's. */
  readonly teacherFingerprint?: TeacherFingerprint;
  /** The teacher's model file and the options that shaped its graph (see `modelRecord`); checked likewise. */
  readonly model?: ModelRecord;
  /** Non-fatal notes (an older targets.json that records less than this version checks). */
  readonly onWarning?: (message: string) => void;
  /** Informational notes (the teacher found at another path with the same content). */
  readonly onNote?: (message: string) => void;
  readonly onProgress?: (done: number, total: number, skipped: number) => void;
}

/** Cheap identity of a teacher checkpoint: its config's content and its safetensors files' names and sizes. */
export interface TeacherFingerprint {
  /** sha256 of the config.json the teacher was built with (null: none was read). */
  readonly config: string | null;
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
}

/** The teacher's model file (resolved path and content hash) and the options that shaped its graph. */
export interface ModelRecord {
  readonly file: string;
  readonly sha256: string;
  readonly variant: string | null;
  readonly hparams: { readonly [name: string]: number | boolean | string };
}

/** targets.json as this version writes it; folders made by older versions lack `teacherFingerprint` and `model`. */
export type TargetsMetaRecord = TargetsMeta & { readonly teacherFingerprint?: TeacherFingerprint; readonly model?: ModelRecord };

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

export function teacherFingerprint(safetensors: readonly string[], configFile: string | undefined): TeacherFingerprint {
  return {
    config: configFile !== undefined && fs.existsSync(configFile) ? sha256(fs.readFileSync(configFile)) : null,
    files: safetensors.map((f) => ({ name: path.basename(f), bytes: fs.statSync(f).size })),
  };
}

export function modelRecord(file: string, variant: string | undefined, hparams: { readonly [name: string]: number | boolean | string } | undefined): ModelRecord {
  const h = hparams ?? {};
  return { file: path.resolve(file), sha256: sha256(fs.readFileSync(file)), variant: variant ?? null, hparams: Object.fromEntries(Object.keys(h).sort().map((k) => [k, h[k]])) };
}

const short = (h: string | null | undefined) => (typeof h === 'string' ? `sha256 ${h.slice(0, 12)}…` : 'none');
const hparamText = (h: ModelRecord['hparams'] | undefined) => {
  const e = Object.entries(h ?? {});
  return e.length ? e.map(([k, v]) => `--hparam ${k}=${v}`).join(' ') : '(no --hparam)';
};

/**
 * One folder holds one teacher's targets: a resumed (or finished) folder made with another teacher checkpoint or
 * model file is refused. They are compared by content where targets.json records it (the checkpoint's fingerprint,
 * the model file's sha256): the same content at another path (a symlink, a copy, a moved folder) is accepted with
 * one note, and targets.json then records the new path. Without a recorded fingerprint the path is compared.
 * Fields an older targets.json lacks cannot be checked: warned about, not refused.
 */
function checkSameTeacher(prev: Partial<TargetsMetaRecord>, o: TargetsOptions, metaFile: string): void {
  const again = 'one folder holds the targets of one teacher: use another --out folder (or delete this one) to start over';
  const unknown: string[] = [];
  const moved: string[] = [];
  const teacherNow = path.resolve(o.teacher);
  const teacherWas = typeof prev.teacher === 'string' ? path.resolve(prev.teacher) : undefined;
  const pf = prev.teacherFingerprint;
  const hasFingerprint = !!pf && typeof pf === 'object' && Array.isArray(pf.files);
  if (teacherWas === undefined) unknown.push('teacher checkpoint');
  if (!hasFingerprint) {
    unknown.push("teacher checkpoint's fingerprint");
    if (teacherWas !== undefined && teacherWas !== teacherNow) {
      throw new UserError(`${metaFile}: these targets were made with --checkpoint '${prev.teacher}', now --checkpoint '${teacherNow}'; ${again}`);
    }
  } else if (o.teacherFingerprint) {
    const now = o.teacherFingerprint;
    const diffs: string[] = [];
    if ((pf.config ?? null) !== now.config) diffs.push(`its config.json was ${short(pf.config)}, now ${short(now.config)}`);
    const was = pf.files.map((f) => `${f.name} (${f.bytes} bytes)`).join(', ');
    const is = now.files.map((f) => `${f.name} (${f.bytes} bytes)`).join(', ');
    if (was !== is) diffs.push(`its safetensors were ${was}, now ${is}`);
    if (diffs.length) {
      const which = teacherWas !== undefined && teacherWas !== teacherNow ? `these targets were made with --checkpoint '${prev.teacher}', now --checkpoint '${teacherNow}', and its files differ` : `the teacher --checkpoint '${teacherNow}' is not the one these targets were made with`;
      throw new UserError(`${metaFile}: ${which}: ${diffs.join('; ')}; ${again}`);
    }
    if (teacherWas !== undefined && teacherWas !== teacherNow) moved.push(`--checkpoint '${prev.teacher}' → '${teacherNow}'`);
  } else if (teacherWas !== undefined && teacherWas !== teacherNow) {
    throw new UserError(`${metaFile}: these targets were made with --checkpoint '${prev.teacher}', now --checkpoint '${teacherNow}'; ${again}`);
  }
  const pm = prev.model;
  if (!pm || typeof pm !== 'object' || typeof pm.file !== 'string') unknown.push('model file');
  else if (o.model) {
    const m = o.model;
    const otherPath = pm.file !== m.file;
    if (typeof pm.sha256 !== 'string') {
      if (otherPath) throw new UserError(`${metaFile}: these targets were made with the model file '${pm.file}', now '${m.file}'; ${again}`);
    } else if (pm.sha256 !== m.sha256) {
      if (otherPath) throw new UserError(`${metaFile}: these targets were made with the model file '${pm.file}' (${short(pm.sha256)}), now '${m.file}' (${short(m.sha256)}); ${again}`);
      throw new UserError(`${metaFile}: the model file '${m.file}' changed since these targets were made (${short(pm.sha256)}, now ${short(m.sha256)}); ${again}`);
    } else if (otherPath) moved.push(`the model file '${pm.file}' → '${m.file}'`);
    if ((pm.variant ?? null) !== m.variant) throw new UserError(`${metaFile}: these targets were made with --variant ${pm.variant ?? '(none)'}, now --variant ${m.variant ?? '(none)'}; ${again}`);
    if (hparamText(pm.hparams) !== hparamText(m.hparams)) throw new UserError(`${metaFile}: these targets were made with ${hparamText(pm.hparams)}, now ${hparamText(m.hparams)}; ${again}`);
  }
  if (moved.length) {
    o.onNote?.(`${metaFile}: the teacher's path changed (${moved.join('; ')}) but its content did not (same fingerprint): continuing; ${TARGETS_META} now records the new path`);
  }
  if (unknown.length) {
    o.onWarning?.(`${metaFile} does not record the ${unknown.join(' or the ')} (written by an older lapidary): cannot check that its shards came from this teacher; continuing`);
  }
}

export function makeTargets(graph: Graph, params: ParamStore, data: TokenStream, o: TargetsOptions): TargetsMeta {
  const logitsOut = graph.outputs.find((x) => x.name === 'logits') ?? graph.outputs[0];
  const lt = graph.nodes.find((n) => n.id === logitsOut.node)!.type;
  const V = lt.shape[lt.shape.length - 1] as number;
  const tau = o.temperature ?? 1;
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > V) throw new UserError(`--k must be an integer in [1, ${V}] (the teacher's vocabulary), got ${o.k}`);
  if (!(tau > 0)) throw new UserError(`--temperature must be > 0, got ${tau}`);
  const all = windowCount(data, o.seq);
  if (all === 0) throw new UserError(`token file '${data.file}' has ${data.ids.length} tokens: fewer than one window of --seq ${o.seq}`);
  const windows = Math.min(all, o.maxWindows ?? all);
  const per = o.windowsPerShard ?? 256;
  let meta: TargetsMetaRecord = {
    format: 'lapidary-distill-targets/1',
    k: o.k,
    seq: o.seq,
    strategy: o.strategy,
    temperature: tau,
    vocab: V,
    tokens: { file: path.basename(data.file), count: data.ids.length, hash: data.hash },
    windows,
    windowsPerShard: per,
    teacher: o.teacher,
    ...(o.strategy === 'sample' ? { seed: o.seed ?? 0 } : {}),
    ...(o.teacherFingerprint ? { teacherFingerprint: o.teacherFingerprint } : {}),
    ...(o.model ? { model: o.model } : {}),
  };
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory()) throw new UserError(`--out '${o.out}' is a file; give a folder for the targets`);
  const metaFile = path.join(o.out, TARGETS_META);
  // Shards by our names without our targets.json are someone else's files: never overwritten.
  if (fs.existsSync(o.out) && !fs.existsSync(metaFile)) {
    const clash = fs.readdirSync(o.out).filter((f) => /^targets-\d{5}\.safetensors$/.test(f));
    if (clash.length) throw new UserError(`--out '${o.out}' holds ${clash.slice(0, 3).join(', ')}${clash.length > 3 ? ', …' : ''} but no ${TARGETS_META}: not written by \`lapidary distill-targets\`; refusing to overwrite: use another --out folder`);
  }
  ensureDir(o.out, '--out');
  if (fs.existsSync(metaFile)) {
    let prev: Partial<TargetsMetaRecord>;
    try {
      prev = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    } catch (e) {
      throw new UserError(`${metaFile}: not valid JSON (${(e as Error).message}); not a targets folder of \`lapidary distill-targets\`: use another --out folder`);
    }
    if (prev?.format !== meta.format) {
      throw new UserError(`${metaFile}: not written by \`lapidary distill-targets\` (format ${JSON.stringify(prev?.format)}); refusing to overwrite it: use another --out folder`);
    }
    // Resumed shards must come from the same draws: an older folder without a seed is taken as it is.
    if (o.strategy === 'sample' && prev.seed !== undefined && prev.seed !== (o.seed ?? 0)) {
      throw new UserError(`${metaFile}: these targets were sampled with --seed ${prev.seed}, now ${o.seed ?? 0}; use the same seed to resume, or another --out folder`);
    }
    for (const key of ['k', 'seq', 'strategy', 'temperature', 'vocab', 'windowsPerShard'] as const) {
      if (prev[key] !== meta[key]) throw new UserError(`${metaFile}: these targets were made with ${key} = ${JSON.stringify(prev[key])}, now ${JSON.stringify(meta[key])}; use another --out folder (or delete it) to start over`);
    }
    if (prev.tokens?.hash !== meta.tokens.hash) throw new UserError(`${metaFile}: these targets belong to another token file (hash ${prev.tokens?.hash}, now ${meta.tokens.hash}); use another --out folder`);
    checkSameTeacher(prev, o, metaFile);
    // What an older targets.json did not record stays unrecorded: its shards' teacher is still unknown.
    const { teacherFingerprint: tf, model: md, ...rest } = meta;
    meta = { ...rest, ...(prev.teacherFingerprint && tf ? { teacherFingerprint: tf } : {}), ...(prev.model && md ? { model: md } : {}) };
  }
  fs.writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');

  const shards = Math.ceil(windows / per);
  let done = 0;
  let skipped = 0;
  for (let i = 0; i < shards; i++) {
    const first = i * per;
    const n = Math.min(per, windows - first);
    if (shardComplete(o.out, i, n, o.seq, o.k)) {
      done += n;
      skipped += n;
      o.onProgress?.(done, windows, skipped);
      continue;
    }
    const rnd = mulberry((o.seed ?? 0) * 1000003 + i);
    const ids = new Int32Array(n * o.seq * o.k);
    const probs = new Float32Array(n * o.seq * o.k);
    for (let w = 0; w < n; w += o.batch) {
      const nb = Math.min(o.batch, n - w);
      // The graph has a fixed batch: a short last batch is padded with (wrapped-around) windows, then dropped.
      const { ids: tok } = windowIds(data, o.seq, first + w, o.batch);
      const x = tf.tensor(tok, [o.batch, o.seq], 'int32');
      const r = execute(graph, { input_ids: x }, params);
      x.dispose();
      const logits = r.outputs[logitsOut.name];
      for (const [name, t] of Object.entries(r.outputs)) if (name !== logitsOut.name) t.dispose();
      const p = tf.tidy(() => tf.softmax(tf.slice(tf.reshape(tau === 1 ? logits : tf.div(logits, tau), [o.batch * o.seq, V]), [0, 0], [nb * o.seq, V])));
      logits.dispose();
      const base = w * o.seq * o.k;
      if (o.strategy === 'topk') {
        const { values, indices } = tf.topk(p, o.k);
        ids.set(indices.dataSync() as Int32Array, base);
        probs.set(values.dataSync() as Float32Array, base);
        values.dispose();
        indices.dispose();
      } else {
        const pd = p.dataSync() as Float32Array;
        for (let row = 0; row < nb * o.seq; row++) {
          const counts = new Map<number, number>();
          for (let d = 0; d < o.k; d++) {
            let u = rnd();
            let v = 0;
            for (; v < V - 1; v++) {
              u -= pd[row * V + v];
              if (u < 0) break;
            }
            counts.set(v, (counts.get(v) ?? 0) + 1);
          }
          let j = 0;
          for (const [v, c] of [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
            ids[base + row * o.k + j] = v;
            probs[base + row * o.k + j] = c / o.k;
            j++;
          }
        }
      }
      p.dispose();
      done += nb;
      o.onProgress?.(done, windows, skipped);
    }
    writeShard(o.out, i, ids, probs, n, o.seq, o.k);
  }
  return meta;
}
