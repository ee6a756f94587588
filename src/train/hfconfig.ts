/**
 * The Hugging Face config.json of a model built from a variant (and overrides): the model file's
 * `config { hf_key -> hparam (null = v) }` mapping read backwards. For each mapped hyperparameter the value goes
 * to every key of it the base config already has, or else to its first key; nested keys (`rope_parameters.
 * rope_theta`) become nested objects; a value equal to the entry's null value is written as `null` (no sliding
 * window, no soft-cap), as `transformers` writes it. Loading the result with the same model file (no variant)
 * gives back the same hyperparameters, except those no config key maps to (`unmappedHparams` says which).
 */
type HparamValue = number | boolean | string;

/** The mapping as the front end gives it (`modelInfo(...).config`), in file order. */
export type ConfigMapping = readonly { readonly key: readonly string[]; readonly hparam: string; readonly nullValue?: HparamValue }[];

const present = (cfg: unknown, key: readonly string[]): boolean => {
  let x = cfg;
  for (const k of key) {
    if (x === null || typeof x !== 'object' || Array.isArray(x) || !(k in (x as object))) return false;
    x = (x as Record<string, unknown>)[k];
  }
  return true;
};

function setPath(cfg: Record<string, unknown>, key: readonly string[], value: unknown): void {
  let x = cfg;
  for (const k of key.slice(0, -1)) {
    const next = x[k];
    x = x[k] = next !== null && typeof next === 'object' && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
  }
  x[key[key.length - 1]] = value;
}

/**
 * `base` (a config the model was built from, or {}) with every mapped hyperparameter set to its value in `hparams`,
 * and the keys the model file states (`config { model_type = "gemma2" }`) where the base has none.
 */
export function hfConfigFor(
  mapping: ConfigMapping,
  hparams: Readonly<Record<string, HparamValue>>,
  base: Readonly<Record<string, unknown>> = {},
  expects: readonly { key: readonly string[]; value: HparamValue }[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = JSON.parse(JSON.stringify(base));
  for (const e of expects) if (!present(base, e.key)) setPath(out, e.key, e.value);
  const byHparam = new Map<string, ConfigMapping[number][]>();
  for (const e of mapping) byHparam.set(e.hparam, [...(byHparam.get(e.hparam) ?? []), e]);
  for (const [h, entries] of byHparam) {
    if (!(h in hparams)) continue;
    const value = hparams[h];
    const targets = entries.filter((e) => present(base, e.key));
    // Without a base key, every key of the hparam is written: a model file lists the newer layout first
    // (rope_parameters.rope_theta, transformers 5) and the older one after (rope_theta, transformers 4).
    for (const e of targets.length ? targets : entries) setPath(out, e.key, e.nullValue !== undefined && e.nullValue === value ? null : value);
  }
  return out;
}

/** Hyperparameters whose value differs between two builds (e.g. the trained model and its config.json read back). */
export function hparamDiff(a: Readonly<Record<string, HparamValue>>, b: Readonly<Record<string, HparamValue>>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
}
