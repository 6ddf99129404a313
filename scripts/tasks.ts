/**
 * The demo app's CPU-bound work, shared by `/sleep/N` (on the event loop) and `/tsleep/N`
 * (on the thread executor), and exported as tasks for the `ThreadPoolExecutor`.
 */

/** Loop iterations per unit of N: about 0.1 s of one core on the reference machine (see README). */
export const SPIN_UNIT = 22_000_000;

/**
 * Busy-loops for `n` units of CPU work and returns a checksum, so the loop cannot be optimised away.
 * The work is a plain loop like the seed's, not a timer: it holds the thread for its whole duration.
 */
export function spin(n: number): number {
  let acc = 0;
  const iterations = Math.max(0, Math.floor(n * SPIN_UNIT));
  for (let i = 0; i < iterations; i++) acc = (acc + i * 7) % 1_000_003;
  return acc;
}
