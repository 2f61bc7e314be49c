type Stoppable = { stop(): Promise<unknown> };

export default async function globalTeardown(): Promise<void> {
  const started = (globalThis as { __gatehouseServices?: Stoppable[] }).__gatehouseServices ?? [];
  await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
}
