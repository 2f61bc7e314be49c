import { Client, type ClientConfig } from 'pg';
import { READ_ONLY } from './postgres-errors';

/** A query on a connection that went silent for too long: the connection was closed. */
export class PostgresNoAnswerError extends Error {
  readonly code = 'GH_PG_NO_ANSWER';
  constructor(readonly ms: number) {
    super(`PostgreSQL sent nothing for ${ms / 1000} s while a query waited: its connection was closed`);
    this.name = 'PostgresNoAnswerError';
  }
}

type Callback = (err: Error | null, result?: unknown) => void;

/** Given back to its pool for it to close: its server refused a write, or said it is read-only. */
export class PostgresReadOnlyError extends Error {
  constructor() {
    super('PostgreSQL is read-only on this connection: it is closed');
    this.name = 'PostgresReadOnlyError';
  }
}

/**
 * A protocol message as pg's connection reports it: an ErrorResponse has its SQLSTATE as `code`, a
 * ParameterStatus its `parameterName` and `parameterValue`.
 */
type Message = { name: string; code?: string; parameterName?: string; parameterValue?: string };

/** The part of pg's `Client` internals this relies on: the protocol connection and its socket. */
type Internals = {
  connection: {
    on(event: 'message', listener: (message: Message) => void): void;
    stream: { destroy(error?: Error): void };
  };
};

/** pg-pool's function giving a lent client back (an error, or `true`: close it instead). */
type Release = (err?: Error | boolean) => void;

/**
 * The settings a server (PostgreSQL 14 and later) reports to each session when it opens and whenever
 * they change, that make every write on the session fail: `on` for a primary fenced with
 * `default_transaction_read_only`, and for a standby.
 */
const READ_ONLY_SETTINGS = new Set(['default_transaction_read_only', 'in_hot_standby']);

/**
 * The event a client of `clientWithAnswerDeadline` emits when its server says the session is
 * read-only (a setting of `READ_ONLY_SETTINGS` reported `on`), as it opens or once it becomes so.
 */
const READ_ONLY_EVENT = 'gatehouse:read-only';

/** A pg `Client` that gives each query a deadline (see `clientWithAnswerDeadline`). */
export type AnswerDeadlineClient = Client & {
  /** Milliseconds a query may wait without a word from the server; 0 or less: no limit. */
  answerDeadlineMs: number;
  /** Its server refused a write as read-only, or says the session is. */
  readonly readOnly: boolean;
};

/**
 * A pg `Client` class (for a pool's `Client` option, or TypeORM's `extra.Client`) on which a query
 * may wait at most `ms` without the server sending anything: a connection silent that long is
 * closed, and the query fails with `PostgresNoAnswerError`, as do later ones on the client; a pool
 * then drops the client. A result that streams in for longer is not cut; a statement that works in
 * silence for longer is (set `answerDeadlineMs` to 0 on the client for one that may).
 *
 * A database host that is gone (a failover, a partition) answers nothing and closes nothing: the
 * operating system gives such a connection up only after its TCP retransmissions, a quarter of an
 * hour by default, and until then every query sent on it waits, with its pool slot. The idle
 * connections of the class (give every pool of one database the same class) are as likely gone:
 * when one is given up, those idle that have heard nothing from the server since its query was
 * sent are closed too, so that each does not make one more query wait `ms` before it is found out.
 * Streams (`Submittable` queries) are not bounded.
 *
 * A connection whose server is read-only (a primary fenced with `default_transaction_read_only`
 * after a failover, the new primary being elsewhere) is given back to its pool as broken
 * (`PostgresReadOnlyError`), so that the pool closes it and opens a new one, which reaches whatever
 * host the address names now, rather than lending it again: under steady load a pooled connection
 * never idles long enough to be dropped, and every write on it would fail (TypeORM gives a client
 * back without the error of its last query). The server says so when the session opens or the
 * setting changes (PostgreSQL 14 and later report `default_transaction_read_only` and
 * `in_hot_standby`), so that a connection opened during a fence and only read on is not lent for a
 * write later; and a write refused as read-only (SQLSTATE 25006) marks it too, whatever the
 * server's version. Its caller still sees the refusal and may roll back first. This holds with no
 * time limit too (`ms` of 0).
 */
export function clientWithAnswerDeadline(ms: number): typeof Client {
  const members = new Set<DeadlineClient>();

  class DeadlineClient extends Client {
    answerDeadlineMs = ms;
    /** When the server last sent anything on this connection (performance.now()). */
    private heardAt = 0;
    /** Queries sent and not yet answered. */
    private waiting = 0;
    /** The limit this client's connection was closed for being silent past (0: it was not). */
    private closedAfter = 0;
    /** Its server refused a write as read-only: given back to its pool, it is closed. */
    private refusedWrite = false;
    /** The read-only settings its server last reported `on` for this session. */
    private readonly readOnlySettings = new Set<string>();
    private poolRelease: Release | undefined;

    constructor(config?: string | ClientConfig) {
      super(config);
      members.add(this);
      this.once('end', () => members.delete(this));
      (this as unknown as Internals).connection.on('message', (message) => {
        this.heardAt = performance.now();
        if (message.name === 'error' && message.code === READ_ONLY) this.refusedWrite = true;
        const setting = message.name === 'parameterStatus' ? message.parameterName : undefined;
        if (setting && READ_ONLY_SETTINGS.has(setting)) {
          const was = this.readOnlySettings.size > 0;
          if (message.parameterValue === 'on') this.readOnlySettings.add(setting);
          else this.readOnlySettings.delete(setting);
          if (!was && this.readOnlySettings.size > 0) this.emit(READ_ONLY_EVENT);
        }
      });
    }

    /** Its server refused a write as read-only, or says the session is. */
    get readOnly(): boolean {
      return this.refusedWrite || this.readOnlySettings.size > 0;
    }

    /** pg-pool sets `release` on every client it lends; this one adds the session being read-only to it. */
    get release(): Release | undefined {
      const release = this.poolRelease;
      return release && ((err) => release(err || (this.readOnly ? new PostgresReadOnlyError() : undefined)));
    }

    set release(release: Release | undefined) {
      this.poolRelease = release;
    }

    /** Closes the connection: its queries, and the client's later ones, fail with `PostgresNoAnswerError`. */
    private close(limit: number): void {
      if (this.closedAfter) return;
      this.closedAfter = limit;
      members.delete(this);
      // The client reports the closed connection as an error event (this error, which its queries
      // fail with too): nobody may be listening to a client checked out of a pool, and an unheard
      // error event ends the process.
      this.on('error', () => undefined);
      (this as unknown as Internals).connection.stream.destroy(new PostgresNoAnswerError(limit));
    }

    // The overloads of pg's `query` (promise, callback, config object) pass through unchanged.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const limit = this.answerDeadlineMs;
      const config = args[0] as { submit?: unknown; callback?: Callback } | string;
      if (limit <= 0 || (typeof config === 'object' && typeof config.submit === 'function'))
        return (super.query as (...a: unknown[]) => unknown)(...args);

      const sentAt = performance.now();
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      this.waiting++;
      const giveUp = (answer: (err: Error) => void) => {
        const check = () => {
          if (settled) return;
          const silent = performance.now() - Math.max(sentAt, this.heardAt);
          if (silent < limit) {
            timer = setTimeout(check, limit - silent);
            return;
          }
          this.close(limit);
          // (A connection still being opened has its pool's connection timeout.)
          for (const other of members)
            if (other.waiting === 0 && other.heardAt > 0 && other.heardAt < sentAt) other.close(limit);
          // pg fails every query of the closed connection, once it has marked the client unusable
          // (a pool then drops it rather than lend it again); should it not, within a second:
          timer = setTimeout(() => {
            if (settled) return;
            settled = true;
            this.waiting--;
            answer(new PostgresNoAnswerError(this.closedAfter));
          }, 1_000);
        };
        timer = setTimeout(check, limit);
      };
      const once =
        (callback: Callback): Callback =>
        (err, result) => {
          if (settled) return;
          settled = true;
          this.waiting--;
          clearTimeout(timer);
          callback(err && this.closedAfter ? new PostgresNoAnswerError(this.closedAfter) : err, result);
        };

      const at = typeof args[1] === 'function' ? 1 : typeof args[2] === 'function' ? 2 : -1;
      if (at >= 0) {
        const callback = args[at] as Callback;
        args[at] = once(callback);
        giveUp((err) => callback(err));
        return (super.query as (...a: unknown[]) => unknown)(...args);
      }
      if (typeof config === 'object' && typeof config.callback === 'function') {
        const callback = config.callback;
        args[0] = { ...config, callback: once(callback) };
        giveUp((err) => callback(err));
        return (super.query as (...a: unknown[]) => unknown)(...args);
      }
      const result = (super.query as (...a: unknown[]) => Promise<unknown>)(...args);
      return new Promise((resolve, reject) => {
        giveUp(reject);
        const settle = once((err, value) => (err ? reject(err) : resolve(value)));
        result.then(
          (value) => settle(null, value),
          (err: Error) => settle(err),
        );
      });
    }
  }
  return DeadlineClient;
}

/** Whether `client` was made by `clientWithAnswerDeadline`. */
function isDeadlineClient(client: unknown): client is AnswerDeadlineClient {
  return typeof client === 'object' && client !== null && 'answerDeadlineMs' in client;
}

/**
 * Sets the deadline of a client made by `clientWithAnswerDeadline` and returns the one it had
 * (`undefined`, and nothing changed, for any other client).
 */
export function setAnswerDeadline(client: unknown, ms: number): number | undefined {
  if (!isDeadlineClient(client)) return undefined;
  const before = client.answerDeadlineMs;
  client.answerDeadlineMs = ms;
  return before;
}

/**
 * Whether a client made by `clientWithAnswerDeadline` is on a session its server said is read-only,
 * or that refused a write as read-only (false for any other client).
 */
export function readOnlySession(client: unknown): boolean {
  return isDeadlineClient(client) && client.readOnly;
}

/**
 * Calls `listener` when the server of a client made by `clientWithAnswerDeadline` says the session
 * is read-only: as it opens (for a listener added before `connect`), or once it becomes so (said
 * with the answer to a query after the setting changed); nothing for any other client.
 */
export function whenReadOnly(client: unknown, listener: () => void): void {
  if (isDeadlineClient(client)) client.on(READ_ONLY_EVENT as 'end', listener);
}
