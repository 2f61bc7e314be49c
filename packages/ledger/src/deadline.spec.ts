import { DeadlineExceededError, withDeadline } from './deadline';

describe('withDeadline', () => {
  it('gives the value of a promise that settles in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000)).resolves.toBe(7);
  });

  it('passes on the failure of a promise that fails in time', async () => {
    await expect(withDeadline(Promise.reject(new Error('refused')), 1_000)).rejects.toThrow('refused');
  });

  it('rejects once the time has passed without an answer', async () => {
    const started = Date.now();
    const never = new Promise<number>(() => undefined);
    const err = await withDeadline(never, 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as Error).message).toBe('no answer within 0.05 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('rejects with the error given for lateness', async () => {
    const never = new Promise<number>(() => undefined);
    await expect(withDeadline(never, 10, () => new RangeError('broker late'))).rejects.toThrow(RangeError);
  });

  it('drops what a late promise settles to', async () => {
    let fail: (e: Error) => void = () => undefined;
    const late = new Promise<number>((_r, reject) => (fail = reject));
    await expect(withDeadline(late, 10)).rejects.toBeInstanceOf(DeadlineExceededError);
    fail(new Error('after the deadline'));
    // No unhandled rejection: the race is the promise's handler.
    await new Promise((r) => setTimeout(r, 10));
  });
});
