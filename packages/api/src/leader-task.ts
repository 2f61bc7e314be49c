/**
 * Runs `task` every `everyMs`, and once `firstAfterMs` after the start when given, on the server that
 * `leads()` only, one run at a time (a tick that finds the last run under way is skipped). A run that
 * fails goes to `failed`; the next tick tries again. Answers a stop function: no run starts after it,
 * the run under way is told through its signal to stop, and the stop resolves once that run has ended
 * (a run that ends by the stop is not a failure).
 */
export function everyWhileLeading(options: {
  everyMs: number;
  firstAfterMs?: number;
  leads: () => boolean;
  task: (signal: AbortSignal) => Promise<void>;
  failed: (err: unknown) => void;
  /** A tick on the leading server that found the last run still under way. */
  skipped?: () => void;
}): () => Promise<void> {
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  const tick = () => {
    if (stopping.signal.aborted || !options.leads()) return;
    if (running) return options.skipped?.();
    running = (async () => {
      try {
        await options.task(stopping.signal);
      } catch (err) {
        if (!stopping.signal.aborted) options.failed(err);
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(tick, options.everyMs);
  const first = options.firstAfterMs === undefined ? undefined : setTimeout(tick, options.firstAfterMs);
  timer.unref();
  first?.unref();
  return async () => {
    clearInterval(timer);
    clearTimeout(first);
    stopping.abort();
    await running;
  };
}
