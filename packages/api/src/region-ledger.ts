import type {
  AppendResult,
  BatchHandler,
  Ledger,
  NewEvent,
  Position,
  ReadOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from '@gatehouse/ledger';
import type { RegionRuntime } from './region';
import { regionOfCommunity } from './region-router';

/**
 * The webhook's view of several regional ledgers: each event is appended to the ledger of its
 * community's region. Reading across regions is refused: there is no order between regions, and
 * reads belong to each region's own projector.
 */
export class RegionRoutedLedger implements Ledger {
  readonly kind: Ledger['kind'];

  constructor(
    private readonly regions: readonly Pick<RegionRuntime, 'region' | 'ledger'>[],
    private readonly home: Pick<RegionRuntime, 'region' | 'ledger'>,
  ) {
    this.kind = home.ledger.kind;
  }

  private ledgerOf(communityId: string): Ledger {
    return regionOfCommunity(this.regions, this.home, communityId).ledger;
  }

  async init(): Promise<void> {
    await Promise.all(this.regions.map((r) => r.ledger.init()));
  }

  async append(events: NewEvent[]): Promise<AppendResult[]> {
    const byLedger = new Map<Ledger, number[]>();
    events.forEach((e, i) => {
      const l = this.ledgerOf(e.communityId);
      byLedger.set(l, [...(byLedger.get(l) ?? []), i]);
    });
    const results: AppendResult[] = new Array(events.length);
    await Promise.all(
      [...byLedger].map(async ([ledger, indexes]) => {
        const appended = await ledger.append(indexes.map((i) => events[i]));
        appended.forEach((r, k) => (results[indexes[k]] = r));
      }),
    );
    return results;
  }

  read(options: ReadOptions = {}): AsyncIterable<RecordedEvent> {
    if (!options.communityId)
      throw new Error('reading every region at once is not supported: read one community');
    return this.ledgerOf(options.communityId).read(options);
  }

  subscribe(consumer: string, options: SubscribeOptions, handler: BatchHandler): Subscription {
    if (!options.communityId) throw new Error('subscribing to every region at once is not supported');
    return this.ledgerOf(options.communityId).subscribe(consumer, options, handler);
  }

  async head(communityId?: string): Promise<Position | null> {
    if (!communityId) throw new Error('the head of every region at once is not defined: name a community');
    return this.ledgerOf(communityId).head(communityId);
  }

  async countAfter(): Promise<number> {
    throw new Error('counting every region at once is not supported: each region has its own log');
  }

  /** Asks every region: an id names one event, wherever its community is. */
  async holds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const ledgers = [...new Set(this.regions.map((r) => r.ledger))];
    const held = await Promise.all(ledgers.map((l) => l.holds(ids)));
    return new Set(held.flatMap((s) => [...s]));
  }

  comparePositions(a: Position, b: Position): number {
    return this.home.ledger.comparePositions(a, b);
  }

  advance(checkpoint: Position | undefined, event: RecordedEvent): Position {
    return this.ledgerOf(event.communityId).advance(checkpoint, event);
  }

  async ping(): Promise<void> {
    await Promise.all(this.regions.map((r) => r.ledger.ping()));
  }

  async close(): Promise<void> {
    // The regions own their ledgers and close them.
  }
}
