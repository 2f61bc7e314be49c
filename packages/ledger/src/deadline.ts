/** A promise given a deadline did not settle within it. */
export class DeadlineExceededError extends Error {
  readonly code = 'DEADLINE_EXCEEDED';
  constructor(readonly ms: number) {
    super(`no answer within ${ms / 1000} s`);
    this.name = 'DeadlineExceededError';
  }
}

/**
 * `promise`'s outcome, or a rejection with `late()` (a `DeadlineExceededError` by default) once `ms`
 * have passed without one: for waits on a database or a broker that may stop answering without
 * closing anything. The promise runs on; what it settles to afterwards is dropped.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  late: () => Error = () => new DeadlineExceededError(ms),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
