import type { Writable } from 'node:stream';
import type { Ledger } from './ledger.port';

export type ExportFilter = {
  communityId?: string;
  /** Inclusive lower bound on `recordedAt` (ISO date-time). */
  since?: string;
  /** Exclusive upper bound on `recordedAt` (ISO date-time). */
  until?: string;
  types?: readonly string[];
};

export type ExportProgress = { exported: number; scanned: number };

export type ExportOptions = {
  /** `onProgress` is called after every this many exported events (and once at the end). */
  progressEvery?: number;
  pageSize?: number;
};

/**
 * Streams the ledger as JSON Lines (one recorded event, with its position, per line), in log order.
 * Honours the writable's backpressure, so memory stays flat whatever the ledger's size. The writable
 * is left open: the caller ends it.
 */
export async function exportJsonl(
  ledger: Ledger,
  filter: ExportFilter,
  writable: Writable,
  onProgress?: (progress: ExportProgress) => void,
  options: ExportOptions = {},
): Promise<ExportProgress> {
  const every = options.progressEvery ?? 1_000;
  const since = filter.since !== undefined ? Date.parse(filter.since) : undefined;
  const until = filter.until !== undefined ? Date.parse(filter.until) : undefined;
  if (Number.isNaN(since) || Number.isNaN(until))
    throw new RangeError('since and until must be ISO date-times');
  const progress: ExportProgress = { exported: 0, scanned: 0 };
  let failure: Error | undefined;
  const onError = (err: Error) => (failure = err);
  writable.on('error', onError);
  try {
    for await (const event of ledger.read({
      communityId: filter.communityId,
      types: filter.types,
      pageSize: options.pageSize,
    })) {
      progress.scanned++;
      const at = Date.parse(event.recordedAt);
      if ((since !== undefined && at < since) || (until !== undefined && at >= until)) continue;
      if (failure) throw failure;
      if (!writable.write(`${JSON.stringify(event)}\n`)) await drained(writable);
      progress.exported++;
      if (progress.exported % every === 0) onProgress?.({ ...progress });
    }
    if (failure) throw failure;
    onProgress?.({ ...progress });
    return progress;
  } finally {
    writable.off('error', onError);
  }
}

function drained(writable: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      writable.off('drain', onDrain);
      writable.off('error', onError);
      writable.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('The export destination closed before the export finished'));
    writable.on('drain', onDrain);
    writable.on('error', onError);
    writable.on('close', onClose);
  });
}
