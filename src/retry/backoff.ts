// The one retry backoff: exponential with full jitter, capped. Pure and browser-safe (the client
// SDK and the anchorer use it). Full jitter spreads retries of many clients over the whole window
// instead of bunching them at base·2^n.

export interface BackoffOptions {
  /** The window of the first retry, ms. */
  baseMs: number;
  /** The largest window, ms. */
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (1 for the first retry):
 * random() × min(maxMs, baseMs × 2^(attempt−1)), so 0 ≤ delay < the window when random() is in [0, 1).
 */
export function backoffDelay(attempt: number, { baseMs, maxMs }: BackoffOptions, random: () => number = Math.random): number {
  if (!Number.isSafeInteger(attempt) || attempt < 1) throw new RangeError(`backoff attempt must be an integer ≥ 1, got ${attempt}`);
  return random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1));
}
