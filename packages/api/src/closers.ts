import type { Logger } from 'pino';

/**
 * What a component opened, closed in the reverse order: a step that fails is logged and the next one
 * runs; a step that takes long (a database that stopped answering) is named in the log after
 * `firstNoticeMs` and again every `everyMs`, so that an operator sees what the stop is waiting for.
 */
export class Closers {
  /** Steps under way in this process, oldest first: a step's own closers' steps come after it. */
  private static readonly underWay: object[] = [];
  private readonly steps: { name: string; close: () => Promise<unknown> | unknown }[] = [];

  constructor(
    private readonly log: Logger,
    private readonly timing: { firstNoticeMs: number; everyMs: number } = {
      firstNoticeMs: 5_000,
      everyMs: 10_000,
    },
  ) {}

  add(name: string, close: () => Promise<unknown> | unknown): void {
    this.steps.push({ name, close });
  }

  async closeAll(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      const started = Date.now();
      const token = {};
      Closers.underWay.push(token);
      const notice = () => {
        // Only the innermost step waited on is named: the steps around it wait on it.
        if (Closers.underWay[Closers.underWay.length - 1] !== token) return;
        this.log.warn(
          { step: step.name, waitedSeconds: Math.round((Date.now() - started) / 1000) },
          `still stopping: waiting for ${step.name}`,
        );
      };
      let repeat: NodeJS.Timeout | undefined;
      const first = setTimeout(() => {
        notice();
        repeat = setInterval(notice, this.timing.everyMs);
      }, this.timing.firstNoticeMs);
      try {
        await step.close();
      } catch (err) {
        this.log.warn({ err, step: step.name }, 'error while closing');
      } finally {
        clearTimeout(first);
        clearInterval(repeat);
        Closers.underWay.splice(Closers.underWay.lastIndexOf(token), 1);
      }
    }
  }
}
