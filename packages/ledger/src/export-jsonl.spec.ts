import { Writable } from 'node:stream';
import { exportJsonl, type ExportProgress } from './export-jsonl';
import type { Ledger, ReadOptions, RecordedEvent } from './ledger.port';

function recorded(i: number, overrides: Partial<RecordedEvent> = {}): RecordedEvent {
  return {
    id: `e-${i}`,
    type: i % 2 === 0 ? 'TierDefined' : 'PriceAdded',
    communityId: i % 3 === 0 ? 'c-a' : 'c-b',
    subject: null,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    source: 'admin',
    actor: null,
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: { i },
    position: String(i),
    ...overrides,
  };
}

/** A ledger whose read() counts how many events were pulled. */
function fakeLedger(count: number) {
  const state = { pulled: 0, lastOptions: undefined as ReadOptions | undefined };
  const ledger = {
    async *read(options: ReadOptions = {}) {
      state.lastOptions = options;
      for (let i = 0; i < count; i++) {
        const e = recorded(i);
        if (options.communityId && e.communityId !== options.communityId) continue;
        if (options.types && !options.types.includes(e.type)) continue;
        state.pulled++;
        yield e;
      }
    },
  } as unknown as Ledger;
  return { ledger, state };
}

class SlowSink extends Writable {
  lines: string[] = [];
  maxAhead = 0;
  constructor(private readonly probe: () => number) {
    super({ highWaterMark: 256 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.lines.push(chunk.toString());
    this.maxAhead = Math.max(this.maxAhead, this.probe() - this.lines.length);
    setImmediate(cb);
  }
}

describe('exportJsonl', () => {
  it('writes one recorded event per line, in log order, with its position', async () => {
    const { ledger } = fakeLedger(5);
    const sink = new SlowSink(() => 0);
    const result = await exportJsonl(ledger, {}, sink);
    expect(result).toEqual({ exported: 5, scanned: 5 });
    const parsed = sink.lines
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as RecordedEvent);
    expect(parsed).toEqual([0, 1, 2, 3, 4].map((i) => recorded(i)));
  });

  it('passes community and types to the ledger and bounds recordedAt to [since, until)', async () => {
    const { ledger, state } = fakeLedger(30);
    const sink = new SlowSink(() => 0);
    await exportJsonl(
      ledger,
      {
        communityId: 'c-a',
        types: ['TierDefined'],
        since: '2026-01-01T00:00:06.000Z',
        until: '2026-01-01T00:00:24.000Z',
      },
      sink,
    );
    expect(state.lastOptions).toMatchObject({ communityId: 'c-a', types: ['TierDefined'] });
    const ids = sink.lines.map((l) => (JSON.parse(l) as RecordedEvent).id);
    expect(ids).toEqual(['e-6', 'e-12', 'e-18']);
  });

  it('waits for the destination to drain instead of buffering the whole ledger', async () => {
    const { ledger, state } = fakeLedger(2_000);
    const sink = new SlowSink(() => state.pulled);
    await exportJsonl(ledger, {}, sink);
    expect(sink.lines).toHaveLength(2_000);
    // each line is ~300 bytes against a 256-byte high-water mark: the export may run ahead by a few lines only
    expect(sink.maxAhead).toBeLessThan(10);
  });

  it('reports progress every N exported events and once at the end', async () => {
    const { ledger } = fakeLedger(25);
    const seen: ExportProgress[] = [];
    await exportJsonl(ledger, {}, new SlowSink(() => 0), (p) => seen.push(p), { progressEvery: 10 });
    expect(seen.map((p) => p.exported)).toEqual([10, 20, 25]);
  });

  it('fails when the destination fails', async () => {
    const { ledger } = fakeLedger(100);
    const broken = new Writable({
      highWaterMark: 16,
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    await expect(exportJsonl(ledger, {}, broken)).rejects.toThrow('disk full');
  });
});
