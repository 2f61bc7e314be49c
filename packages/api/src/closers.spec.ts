import pino from 'pino';
import { Closers } from './closers';

function collectingLog() {
  const lines: { level: number; msg: string; step?: string; waitedSeconds?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

const timing = { firstNoticeMs: 40, everyMs: 40 };

describe('Closers', () => {
  it('closes in the reverse order, going on after a step that fails', async () => {
    const { log, lines } = collectingLog();
    const order: string[] = [];
    const closers = new Closers(log, timing);
    closers.add('database', () => void order.push('database'));
    closers.add('ledger', () => {
      order.push('ledger');
      throw new Error('ledger refused to close');
    });
    closers.add('server', async () => void order.push('server'));
    await closers.closeAll();
    expect(order).toEqual(['server', 'ledger', 'database']);
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, step: 'ledger', msg: 'error while closing' }),
    ]);

    await closers.closeAll();
    expect(order).toHaveLength(3);
  });

  it('names a step that takes long, again while it lasts, and only the innermost of nested steps', async () => {
    const { log, lines } = collectingLog();
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const inner = new Closers(log, timing);
    inner.add('the ledger', () => stuck);
    inner.add('the projector', () => undefined);
    const outer = new Closers(log, timing);
    outer.add('region us', () => inner.closeAll());

    const closing = outer.closeAll();
    await new Promise((r) => setTimeout(r, 150));
    release();
    await closing;

    const notices = lines.filter((l) => l.msg.startsWith('still stopping'));
    expect(notices.length).toBeGreaterThanOrEqual(2);
    expect(new Set(notices.map((l) => l.msg))).toEqual(new Set(['still stopping: waiting for the ledger']));
    expect(notices.every((l) => l.level === 40 && l.step === 'the ledger')).toBe(true);

    // Nothing more once closed.
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(count);
  });

  it('says nothing about steps that close in time', async () => {
    const { log, lines } = collectingLog();
    const closers = new Closers(log, timing);
    closers.add('quick', () => new Promise((r) => setTimeout(r, 5)));
    await closers.closeAll();
    expect(lines).toEqual([]);
  });
});
