/** Thrown by a projection to reject one recorded fact with a readable reason (becomes an anomaly). */
export class ProjectionAnomalyError extends Error {
  readonly code = 'PROJECTION_ANOMALY';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Another projector advanced the same checkpoint; this one stops its batch and resumes from the store. */
export class CheckpointConflictError extends Error {
  readonly code = 'CHECKPOINT_CONFLICT';
  constructor(
    readonly projection: string,
    readonly expected: string | null,
    readonly actual: string | null,
  ) {
    super(
      `Checkpoint of ${projection} moved from ${expected ?? 'start'} to ${actual ?? 'start'} under this projector`,
    );
    this.name = new.target.name;
  }
}

/** Rebuilds run where the projecting happens: another server holds the projector lease. */
export class ProjectorNotLeadingError extends Error {
  readonly code = 'PROJECTOR_NOT_LEADING';
  constructor() {
    super(
      'another Gatehouse server projects these read models: rebuild on that server, or stop it and try again',
    );
    this.name = new.target.name;
  }
}

const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

function sqlStateOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = typeof e.driverError?.code === 'string' ? e.driverError.code : e.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Is this a failure of the machinery rather than of one fact? Those stop the batch and retry with
 * backoff; everything else is the event's fault and becomes an anomaly.
 * SQLSTATE class 42 (undefined table, syntax) counts as machinery: a missing migration or a broken
 * query must not turn every event into an anomaly.
 */
export function isInfrastructureError(err: unknown): boolean {
  if (err instanceof CheckpointConflictError) return true;
  const code = sqlStateOf(err);
  if (code) {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    if (/^(08|53|57|58|XX|42|3D|3F|55)/.test(code)) return true;
    if (code === '40001' || code === '40P01') return true;
  }
  const message = err instanceof Error ? err.message : String(err);
  return /connection terminated|connection error|timeout exceeded when trying to connect|Connection is not established|Cannot use a pool after calling end|terminating connection/i.test(
    message,
  );
}
