import { serializePayloadEarly } from './envelope';
import { LedgerUnavailableError } from './ledger.errors';
import type { AppendResult, Ledger, NewEvent } from './ledger.port';

type Pending = { events: NewEvent[]; resolve: (r: AppendResult[]) => void; reject: (e: unknown) => void };

/**
 * Group commit for many small concurrent appends (webhooks arriving in parallel): appends requested
 * in the same turn of the event loop, and while earlier batches are being written, go to the ledger
 * as one batch — one transaction, one commit — and each caller gets its own results. Up to
 * `maxInFlight` batches are written at once (a batch has no order against another in flight: they
 * are concurrent requests; the ledger orders each community's events). When a batch has been
 * written, what queued meanwhile is sent before its callers are answered, so the ledger is not idle
 * while they are. If a batch fails, its callers are retried one by one, so one bad event cannot fail
 * its neighbours; if it fails because the ledger is unavailable, they all fail with it at once.
 */
export class AppendBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly ledger: Pick<Ledger, 'append'>,
    private readonly maxEvents = 500,
    private readonly maxInFlight = 2,
  ) {}

  /** Appends `events` with the next batch; their payloads are serialized now, as they are now. */
  append(events: NewEvent[]): Promise<AppendResult[]> {
    if (events.length === 0) return Promise.resolve([]);
    // While the batch before is being written: the next one is then sent without waiting for it.
    for (const e of events) serializePayloadEarly(e);
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // Waiting for the end of this turn lets the appends requested in it share the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch: Pending[] = [];
      let size = 0;
      while (
        this.queue.length > 0 &&
        (batch.length === 0 || size + this.queue[0].events.length <= this.maxEvents)
      ) {
        const p = this.queue.shift()!;
        batch.push(p);
        size += p.events.length;
      }
      this.inFlight++;
      let released = false;
      const release = (): boolean => {
        if (released) return false;
        released = true;
        this.inFlight--;
        return true;
      };
      void this.write(batch, () => {
        // Send what queued meanwhile before answering this batch's callers: the database works on
        // the next batch while they are answered, instead of waiting for every answer to be sent.
        if (release()) this.pump();
      }).finally(() => {
        release();
        this.schedule();
      });
    }
  }

  /** Writes a batch; `written` is called once the ledger has answered, before any caller is. */
  private async write(batch: Pending[], written: () => void): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch;
      const outcome = await this.ledger.append(only.events).then(
        (results) => ({ ok: true as const, results }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      written();
      if (outcome.ok) only.resolve(outcome.results);
      else only.reject(outcome.error);
      return;
    }
    let results: AppendResult[];
    try {
      results = await this.ledger.append(batch.flatMap((p) => p.events));
    } catch (err) {
      // A ledger that cannot be reached would fail each of them in turn, each after its own wait.
      if (err instanceof LedgerUnavailableError) {
        written();
        for (const p of batch) p.reject(err);
        return;
      }
      for (const p of batch) await this.ledger.append(p.events).then(p.resolve, p.reject);
      return;
    }
    written();
    let offset = 0;
    for (const p of batch) {
      const mine = results.slice(offset, offset + p.events.length);
      offset += p.events.length;
      // The same id twice in one batch: the ledger reports the later copy as not appended; a caller
      // whose event was written by a neighbour's copy sees it as a duplicate, as it would have anyway.
      p.resolve(mine);
    }
  }
}
