/**
 * Shared pieces of the hostile-input fuzz tests: iteration count and seed
 * from the environment, and a small seedable PRNG.
 *   HPCC_FUZZ_ITERATIONS  mutants per fuzz test (default 3000; raise for exhaustive runs)
 *   HPCC_FUZZ_SEED        reproduce a run (each test prints the seed it used)
 */
export const FUZZ_ITERATIONS = Number(process.env.HPCC_FUZZ_ITERATIONS ?? 3000);

export const FUZZ_SEED =
  process.env.HPCC_FUZZ_SEED !== undefined ? Number(process.env.HPCC_FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;

/** mulberry32: small, seedable, good enough to pick mutations. Returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
