/**
 * Waiting for the GPU without spinning a CPU core.
 *
 * Dawn's Node bindings learn that GPU work finished by calling ProcessEvents from a `setImmediate`
 * chain that runs while a map or work-done promise is pending, so the main thread spins
 * at 100 % while it waits. On a GPU that costs only power; on a CPU adapter (lavapipe) that core is
 * one the shaders run on: a 2-core machine computed at ~60 % of its idle rate (bench/README.md).
 * While a quiet wait is pending, one extra `setImmediate` turn sleeps `SLEEP_MS` per event-loop turn
 * (Atomics.wait may block Node's main thread), so Dawn still polls every turn but the thread is
 * asleep between polls. The cost is at most `SLEEP_MS` of added latency per wait.
 */
const SLEEP_MS = 1;

// Browsers learn of finished GPU work without a busy loop, and their main thread may not block:
// there (no setImmediate) a wait is the plain promise.
const pollsBusily = typeof setImmediate === 'function';
const sleeper = pollsBusily ? new Int32Array(new SharedArrayBuffer(4)) : new Int32Array(1);
let pendingWaits = 0;
let sleeping = false;

function sleepBetweenPolls(): void {
  if (pendingWaits === 0) {
    sleeping = false;
    return;
  }
  Atomics.wait(sleeper, 0, 0, SLEEP_MS);
  setImmediate(sleepBetweenPolls);
}

/** Resolves as `pending` does, sleeping between Dawn's completion polls meanwhile. */
export async function quietWait<T>(pending: Promise<T>): Promise<T> {
  if (!pollsBusily) return pending;
  pendingWaits++;
  if (!sleeping) {
    sleeping = true;
    setImmediate(sleepBetweenPolls);
  }
  try {
    return await pending;
  } finally {
    pendingWaits--;
  }
}
