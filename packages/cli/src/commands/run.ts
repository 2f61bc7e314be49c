import { ConfigError } from '@gatehouse/api';

/** Wraps a command action: sets the exit code, prints errors without stack traces (GATEHOUSE_DEBUG shows them). */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<number> | number) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`gatehouse: configuration error: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      const e = err as Error & { code?: string };
      process.stderr.write(`gatehouse: ${e.message}\n`);
      if (process.env.GATEHOUSE_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    }
  };
}
