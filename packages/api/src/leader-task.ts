/**
 * Runs `task` every `everyMs`, and once `firstAfterMs` after the start when given, on the server that
 * `leads()` only, one run at a time (a tick that finds the last run under way is skipped). A run that
 * fails goes to `failed`; the next tick tries again. Answers a stop function.
 */
export function everyWhileLeading(options: {
  everyMs: number;
  firstAfterMs?: number;
  leads: () => boolean;
  task: () => Promise<void>;
  failed: (err: unknown) => void;
}): () => void {
  let running = false;
  const tick = async () => {
    if (running || !options.leads()) return;
    running = true;
    try {
      await options.task();
    } catch (err) {
      options.failed(err);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, options.everyMs);
  const first = options.firstAfterMs === undefined ? undefined : setTimeout(tick, options.firstAfterMs);
  timer.unref();
  first?.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(first);
  };
}
