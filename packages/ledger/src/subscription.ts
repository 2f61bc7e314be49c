import type { Subscription } from './ledger.port';

/** Something a waiting loop can be woken from early (a notification, `stop()`). */
export class Waker {
  private wakeUp: (() => void) | undefined;
  private pending = false;

  wake(): void {
    this.pending = true;
    this.wakeUp?.();
  }

  /** Resolves after `ms`, or sooner when woken (also by a wake that came while not waiting). */
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}

/**
 * Runs `loop` until it returns or `stop()` is called; `done` settles when the loop has ended, and
 * rejects with the loop's error.
 */
export function runSubscription(
  loop: (state: { readonly stopped: boolean; waker: Waker }) => Promise<void>,
  onEnd?: () => Promise<void> | void,
): Subscription {
  const state = { stopped: false, waker: new Waker() };
  const done = (async () => {
    try {
      await loop(state);
    } finally {
      await onEnd?.();
    }
  })();
  // `done` is observed by callers; keep an unobserved rejection from crashing the process.
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      state.stopped = true;
      state.waker.wake();
      await done.catch(() => undefined);
    },
  };
}
