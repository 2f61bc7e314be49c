import { LedgerUnavailableError } from '../../ledger.errors';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  // PostgresNoAnswerError: the connection did not answer in time and was closed.
  'GH_PG_NO_ANSWER',
]);

/** SQLSTATE read_only_sql_transaction. */
export const READ_ONLY = '25006';

/** A write refused because the server, or the session, is read-only: nothing of it was written. */
export function refusedAsReadOnly(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === READ_ONLY;
}

/**
 * Connection failures, server shutdowns, exhausted pools and read-only servers: the same call may
 * succeed later.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  // Errors raised inside node's own modules may come from another realm (jest): no instanceof Error.
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    // 08: connection exception, 57P: operator intervention (shutdown), 53300: too many connections,
    // 25006: a write refused by a read-only server (a primary fenced after a failover, or a standby)
    if (code.startsWith('08') || code.startsWith('57P') || code === '53300' || code === READ_ONLY)
      return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end/i.test(
    String((err as { message?: unknown }).message),
  );
}

export function toLedgerError(err: unknown, what: string): unknown {
  return isPostgresUnavailable(err)
    ? new LedgerUnavailableError(
        `PostgreSQL ledger unavailable (${what}): ${String((err as { message?: unknown }).message)}`,
        err,
      )
    : err;
}
