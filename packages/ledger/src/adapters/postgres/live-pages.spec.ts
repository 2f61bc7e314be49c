import { LivePages, type LogCursor } from './live-pages';

type Row = { tx: string; position: string; id: string };

/** A log in memory, read the way the PostgreSQL ledger reads it: after a cursor, in order, up to a limit. */
function fakeLog(size: number) {
  const rows: Row[] = Array.from({ length: size }, (_, i) => ({
    tx: String(100 + Math.floor(i / 3)),
    position: String(i + 1),
    id: `e${i}`,
  }));
  const stats = { reads: 0, rowsRead: 0 };
  let visible = size;
  let failNext = false;
  const after = (c: LogCursor) => (r: Row) =>
    BigInt(r.tx) > BigInt(c.tx) || (r.tx === c.tx && BigInt(r.position) > BigInt(c.position));
  return {
    rows,
    stats,
    /** Only the first `n` rows are settled (readable) from now on. */
    settle(n: number) {
      visible = n;
    },
    failOnce() {
      failNext = true;
    },
    async read(c: LogCursor, limit: number): Promise<Row[]> {
      await new Promise((r) => setImmediate(r));
      if (failNext) {
        failNext = false;
        throw new Error('connection lost');
      }
      stats.reads++;
      const page = rows.slice(0, visible).filter(after(c)).slice(0, limit);
      stats.rowsRead += page.length;
      return page;
    },
  };
}

const ORIGIN = { tx: '0', position: '0' };

/** A consumer reading the whole log page by page, as a subscription does. */
async function consume(
  pages: LivePages<Row>,
  pageSize: number,
  total: number,
  pause = 0,
  name?: string,
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: LogCursor = ORIGIN;
  while (seen.length < total) {
    const page = await pages.page(cursor, pageSize, name);
    if (page.length === 0) throw new Error(`stuck after ${seen.length}`);
    seen.push(...page.map((r) => r.id));
    cursor = page[page.length - 1];
    for (let i = 0; i < pause; i++) await new Promise((r) => setImmediate(r));
  }
  return seen;
}

describe('LivePages', () => {
  it('serves consumers of different speeds every row in order, reading each row about once', async () => {
    const log = fakeLog(3_000);
    const pages = new LivePages<Row>((c, n) => log.read(c, n));
    const all = log.rows.map((r) => r.id);
    // Five consumers with pauses of different lengths between pages drift apart along the log.
    const seen = await Promise.all([0, 1, 3, 7, 15].map((pause) => consume(pages, 250, all.length, pause)));
    for (const ids of seen) expect(ids).toEqual(all);
    // Five times the log was handed out; it was read from the log about once.
    expect(log.stats.rowsRead).toBeLessThan(all.length * 1.2);
  });

  it('lets go of the rows every named consumer has passed, and keeps those the slowest still needs', async () => {
    const log = fakeLog(3_000);
    const pages = new LivePages<Row>((c, n) => log.read(c, n), 100_000);
    const all = log.rows.map((r) => r.id);
    let largest = 0;
    const watch = setInterval(() => (largest = Math.max(largest, pages.size)), 0);
    try {
      const seen = await Promise.all(
        [0, 2, 5].map((pause, i) => consume(pages, 100, all.length, pause, `c${i}`)),
      );
      for (const ids of seen) expect(ids).toEqual(all);
    } finally {
      clearInterval(watch);
    }
    expect(log.stats.rowsRead).toBeLessThan(all.length * 1.2);
    // The slowest consumer's last page is all that is left; at no time was the whole log kept.
    expect(pages.size).toBeLessThanOrEqual(100);
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(all.length);
  });

  it('continues a page past the end of what it keeps from the log, without a gap or a repeat', async () => {
    const log = fakeLog(100);
    const readsFrom: string[] = [];
    const pages = new LivePages<Row>((c, n) => {
      readsFrom.push(`${c.tx}.${c.position}`);
      return log.read(c, n);
    });
    const first = await pages.page(ORIGIN, 30);
    const rest = await pages.page(log.rows[9], 50);
    expect(first.map((r) => r.id)).toEqual(log.rows.slice(0, 30).map((r) => r.id));
    expect(rest.map((r) => r.id)).toEqual(log.rows.slice(10, 60).map((r) => r.id));
    // Rows 11..30 came from memory; the log was read on from row 30 (a whole page, kept for others).
    const r30 = log.rows[29];
    expect(readsFrom).toEqual(['0.0', `${r30.tx}.${r30.position}`]);
    const reads = log.stats.reads;
    expect((await pages.page(log.rows[59], 20)).map((r) => r.id)).toEqual(
      log.rows.slice(60, 80).map((r) => r.id),
    );
    expect(log.stats.reads).toBe(reads);
  });

  it('sends one query for identical reads in flight at once', async () => {
    const log = fakeLog(50);
    const pages = new LivePages<Row>((c, n) => log.read(c, n));
    const pagesRead = await Promise.all([1, 2, 3].map(() => pages.page(ORIGIN, 20)));
    for (const p of pagesRead) expect(p.map((r) => r.id)).toEqual(log.rows.slice(0, 20).map((r) => r.id));
    expect(log.stats.reads).toBe(1);
  });

  it('keeps reading on as the log settles further, and never hands out a row that was not settled', async () => {
    const log = fakeLog(100);
    log.settle(40);
    const pages = new LivePages<Row>((c, n) => log.read(c, n));
    const a = await pages.page(ORIGIN, 60);
    expect(a).toHaveLength(40);
    // At the end of what is settled, a consumer is not told there is nothing: it asks the log again.
    expect(await pages.page(a[39], 60)).toEqual([]);
    log.settle(100);
    const b = await pages.page(a[39], 60);
    expect(b.map((r) => r.id)).toEqual(log.rows.slice(40, 100).map((r) => r.id));
    // A consumer behind reads the newly settled rows from memory, in one piece with the older ones.
    const reads = log.stats.reads;
    const c = await pages.page(log.rows[19], 80);
    expect(c.map((r) => r.id)).toEqual(log.rows.slice(20, 100).map((r) => r.id));
    expect(log.stats.reads).toBe(reads);
  });

  it('stays within its row budget and reads evicted rows again from the log', async () => {
    const log = fakeLog(1_000);
    const pages = new LivePages<Row>((c, n) => log.read(c, n), 200);
    const all = log.rows.map((r) => r.id);
    expect(await consume(pages, 100, all.length)).toEqual(all);
    expect(pages.size).toBeLessThanOrEqual(200);
    const before = log.stats.rowsRead;
    // A late consumer from the start: what was evicted comes from the log again, complete and in order.
    expect(await consume(pages, 100, all.length)).toEqual(all);
    expect(log.stats.rowsRead - before).toBeGreaterThanOrEqual(800);
    expect(pages.size).toBeLessThanOrEqual(200);
  });

  it('keeps nothing from a failed read: the next one asks the log again', async () => {
    const log = fakeLog(20);
    const pages = new LivePages<Row>((c, n) => log.read(c, n));
    log.failOnce();
    await expect(pages.page(ORIGIN, 10)).rejects.toThrow('connection lost');
    expect(pages.size).toBe(0);
    expect((await pages.page(ORIGIN, 10)).map((r) => r.id)).toEqual(log.rows.slice(0, 10).map((r) => r.id));
  });
});
