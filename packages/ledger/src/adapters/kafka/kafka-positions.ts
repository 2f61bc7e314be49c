import type { Position } from '../../ledger.port';

/**
 * Kafka positions: an event's is `<partition>:<offset>`; a checkpoint over every community holds one
 * `<partition>:<offset>` per partition, comma separated (a one-partition checkpoint is a position).
 */
export type Offsets = Map<number, bigint>;

export function parseOffsets(p: Position): Offsets {
  const out: Offsets = new Map();
  if (p === '') return out;
  for (const part of p.split(',')) {
    const m = /^(\d+):(-?\d+)$/.exec(part);
    if (!m) throw new RangeError(`Not a Kafka ledger position: ${p}`);
    out.set(Number(m[1]), BigInt(m[2]));
  }
  return out;
}

export function formatOffsets(offsets: Offsets): Position {
  return [...offsets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([p, o]) => `${p}:${o}`)
    .join(',');
}

export function formatPosition(partition: number, offset: bigint | string): Position {
  return `${partition}:${offset}`;
}

/**
 * Same-partition positions compare by offset. Checkpoints compare partition by partition (a missing
 * partition is before its first offset); two that disagree in direction are not ordered.
 */
export function compareOffsets(a: Position, b: Position): number {
  const pa = parseOffsets(a);
  const pb = parseOffsets(b);
  let sign = 0;
  for (const partition of new Set([...pa.keys(), ...pb.keys()])) {
    const x = pa.get(partition) ?? -1n;
    const y = pb.get(partition) ?? -1n;
    const s = x === y ? 0 : x < y ? -1 : 1;
    if (s === 0) continue;
    if (sign !== 0 && s !== sign) throw new RangeError(`Positions ${a} and ${b} are not ordered`);
    sign = s;
  }
  return sign;
}

export function advanceOffsets(checkpoint: Position | undefined, position: Position): Position {
  const merged = checkpoint ? parseOffsets(checkpoint) : new Map<number, bigint>();
  for (const [p, o] of parseOffsets(position)) {
    const cur = merged.get(p);
    if (cur === undefined || o > cur) merged.set(p, o);
  }
  return formatOffsets(merged);
}
