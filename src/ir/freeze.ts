/** Deep-freezing graphs that passes and builders return (graphs are immutable). */
import { freeze } from 'immer';

/**
 * Deep-freeze `v` exactly as immer's `freeze(v, true)` does (it also stops at objects that are already frozen),
 * but without listing the entries of every array and object it visits: a pass's result mostly holds nodes of
 * its (frozen) input, so immer would build one [key, value] pair per node only to find each node frozen.
 * Plain objects and arrays are walked here; anything else immer can freeze (Map, Set, immerable classes) is
 * handed to immer.
 */
export function freezeDeep<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
  if (Array.isArray(v)) {
    Object.freeze(v);
    for (let i = 0; i < v.length; i++) freezeDeep(v[i]);
    return v;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return freeze(v, true);
  Object.freeze(v);
  for (const k in v) freezeDeep(v[k]);
  return v;
}
