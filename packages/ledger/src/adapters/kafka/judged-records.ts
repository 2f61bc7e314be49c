/** A record of the topic: where it sits and its bytes (null for a tombstone). */
export type TopicRecord = { offset: bigint; value: Buffer | null };

/** A decoded record and whether the id index delivers it (the first record of its id). */
export type Judged<E> = { event: E; delivered: boolean };

/**
 * Records as this process's readers decoded them and the id index judged them, by partition and
 * offset. Each projection reads the topic with its own consumer; without this, every one of them
 * parsed every record and asked the id index about it again. A reader that comes later is given the
 * earlier one's judgement. The index moves an id to a lower offset when a reader meets an earlier
 * copy (a record produced behind the adapter's back): the record that held the id is then judged
 * a copy from that moment on, as the index would answer. Keeps the `max` most recently judged records.
 */
export class JudgedRecords<E extends { id: string; communityId: string }> {
  private readonly judged = new Map<string, Judged<E>>();
  private readonly pending = new Map<string, Promise<Judged<E>>>();
  /** The kept record each id is delivered with. */
  private readonly holder = new Map<string, Judged<E>>();

  constructor(
    private readonly decode: (partition: number, record: TopicRecord & { value: Buffer }) => E,
    /** The ids (of the records given) the index delivers. */
    private readonly claim: (
      partition: number,
      records: { id: string; communityId: string; offset: bigint }[],
    ) => Promise<Set<string>>,
    private readonly max = 5_000,
  ) {}

  /** Kept now (for tests). */
  get size(): number {
    return this.judged.size;
  }

  /** The records of one partition (in offset order), decoded and judged; tombstones are left out. */
  async judge(partition: number, records: readonly TopicRecord[]): Promise<Judged<E>[]> {
    const slots: (Judged<E> | Promise<Judged<E>> | undefined)[] = [];
    const fresh: { at: number; key: string; event: E; offset: bigint }[] = [];
    for (const r of records) {
      if (!r.value) continue;
      const key = `${partition}:${r.offset}`;
      // Judged already, or being judged for a reader that came a moment earlier.
      const known = this.judged.get(key) ?? this.pending.get(key);
      if (known) {
        slots.push(known);
        continue;
      }
      fresh.push({
        at: slots.length,
        key,
        event: this.decode(partition, { offset: r.offset, value: r.value }),
        offset: r.offset,
      });
      slots.push(undefined);
    }
    if (fresh.length > 0) {
      const work = this.claim(
        partition,
        fresh.map((f) => ({ id: f.event.id, communityId: f.event.communityId, offset: f.offset })),
      ).then((delivered) => {
        // The index judges an id by its first record here; a later record of the same id is a copy.
        const firsts = new Set<string>();
        return fresh.map((f) => {
          const first = !firsts.has(f.event.id);
          firsts.add(f.event.id);
          return { event: f.event, delivered: first && delivered.has(f.event.id) };
        });
      });
      fresh.forEach((f, i) => {
        const one = work.then((all) => all[i]);
        // Awaited by the readers that find it; this reader sees a failure through `work`.
        one.catch(() => undefined);
        this.pending.set(f.key, one);
      });
      try {
        const all = await work;
        fresh.forEach((f, i) => {
          const judged = all[i];
          slots[f.at] = judged;
          this.judged.set(f.key, judged);
          if (!judged.delivered) return;
          const before = this.holder.get(judged.event.id);
          if (before && before !== judged) before.delivered = false;
          this.holder.set(judged.event.id, judged);
        });
      } finally {
        for (const f of fresh) this.pending.delete(f.key);
      }
      for (const [key, judged] of this.judged) {
        if (this.judged.size <= this.max) break;
        this.judged.delete(key);
        if (this.holder.get(judged.event.id) === judged) this.holder.delete(judged.event.id);
      }
    }
    return Promise.all(slots as (Judged<E> | Promise<Judged<E>>)[]);
  }

  clear(): void {
    this.judged.clear();
    this.holder.clear();
  }
}
