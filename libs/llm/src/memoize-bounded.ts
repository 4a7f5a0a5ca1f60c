/**
 * `compute(key)`, remembered for `limit` distinct keys: beyond, the key computed longest ago is forgotten (first
 * in, first out; no reordering on a hit, so a hit costs one Map lookup). For values derived from a few distinct
 * long strings (prompts, personas) whose derivation costs more than the lookup.
 */
export function memoizeBounded<V>(limit: number, compute: (key: string) => V): (key: string) => V {
  const kept = new Map<string, V>();
  return (key) => {
    let value = kept.get(key);
    if (value === undefined) {
      value = compute(key);
      if (kept.size >= limit) kept.delete(kept.keys().next().value!);
      kept.set(key, value);
    }
    return value;
  };
}
