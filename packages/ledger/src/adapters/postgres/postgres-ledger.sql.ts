export type TableNames = {
  log: string;
  sequence: string;
  appendFn: string;
  channel: string;
};

export function tableNames(prefix: string): TableNames {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new RangeError(`Invalid ledger prefix: ${prefix}`);
  if (prefix === 'ledger_events')
    throw new RangeError('ledger_events is the archive projection, not a ledger prefix');
  return {
    log: `${prefix}_log`,
    sequence: `${prefix}_log_position_seq`,
    appendFn: `${prefix}_append`,
    channel: `${prefix}_appended`,
  };
}

export function initSql(n: TableNames): string {
  return `
CREATE SEQUENCE IF NOT EXISTS ${n.sequence};
CREATE TABLE IF NOT EXISTS ${n.log} (
  position        bigint      NOT NULL DEFAULT nextval('${n.sequence}'),
  tx              xid8        NOT NULL DEFAULT pg_current_xact_id(),
  community_seq   bigint      NOT NULL,
  id              text        NOT NULL UNIQUE,
  type            text        NOT NULL,
  community_id    text        NOT NULL,
  subject         text,
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL,
  source          text        NOT NULL CHECK (source IN ('stripe', 'admin', 'system', 'migration')),
  actor           text,
  causation_id    text,
  correlation_id  text,
  schema_version  integer     NOT NULL CHECK (schema_version >= 1),
  -- the envelope's data as the ledger was given it: json keeps the text, jsonb would re-encode it
  -- on every append and decode it on every read
  data            json        NOT NULL,
  -- log order: the writing transaction, then the sequence (see the README's late-commit rule)
  PRIMARY KEY (tx, position),
  UNIQUE (community_id, community_seq)
);
ALTER SEQUENCE ${n.sequence} OWNED BY ${n.log}.position;
`;
}

/**
 * Ends the single-event insert (`INSERT INTO <log> AS l ...`) of an append function: its position,
 * or the original one when the id was already recorded, as the function's one row.
 */
function reportSingle(n: TableNames): string {
  return `ON CONFLICT (id) DO NOTHING
    RETURNING l.tx, l.position INTO out_tx, out_position;
    out_appended := FOUND;
    IF NOT out_appended THEN
      SELECT l.tx, l.position INTO out_tx, out_position FROM ${n.log} l WHERE l.id = out_id;
    END IF;
    RETURN NEXT;
    RETURN;`;
}

/**
 * After an `input` CTE (the batch's envelopes with their index `i`) and with `known` holding the
 * batch's ids already recorded: the CTEs that insert the other ids once each, numbered after each
 * community's last `community_seq`, and return the ids written (`w`). `where` narrows the rows
 * inserted further (`AND ...`).
 */
function insertFresh(n: TableNames, where = ''): string {
  return `), fresh AS (
    SELECT DISTINCT ON (i.id) i.* FROM input i
     WHERE i.id <> ALL(known)${where}
     ORDER BY i.id, i.i
  ), heads AS (
    SELECT f."communityId" AS community_id,
           (SELECT coalesce(max(l.community_seq), 0) FROM ${n.log} l WHERE l.community_id = f."communityId") AS last_seq
      FROM (SELECT DISTINCT "communityId" FROM fresh) f
  ), numbered AS (
    SELECT f.*, h.last_seq + row_number() OVER (PARTITION BY f."communityId" ORDER BY f.i) AS seq
      FROM fresh f JOIN heads h ON h.community_id = f."communityId"
  ), w AS (
    INSERT INTO ${n.log} (community_seq, id, type, community_id, subject, occurred_at, recorded_at, source, actor,
                          causation_id, correlation_id, schema_version, data)
    SELECT seq, id, type, "communityId", subject, "occurredAt", "recordedAt", source, actor, "causationId",
           "correlationId", "schemaVersion", data
      FROM numbered ORDER BY i
    ON CONFLICT (id) DO NOTHING
    RETURNING id
  )`;
}

/**
 * One round trip per batch: lock the batch's communities (before the transaction takes an xid, so
 * per community the xid order is the commit order), then, in statements that see what was committed
 * while waiting for the locks, insert the ids not yet recorded with the next per-community sequence
 * numbers, and report every event's position (the original one for a repeated id). Subscribers are
 * notified by the adapter after the commit.
 *
 * The batch is a `json` array of envelopes without their payloads, read once (`json_to_recordset`),
 * and beside it the `json` array of their payloads, in the same order, only split into its elements
 * (`json_array_elements`): each goes into the log as the text it was given. Reading the payloads as
 * fields of the records instead would unescape every string inside them (PostgreSQL 15: 13 µs of
 * CPU per Stripe event). The batch's ids, in batch order, and its communities come as arrays
 * beside them, so that the locks are taken and the id index probed without reading them; a batch
 * they do not describe is refused (and nothing of it is written).
 */
export function appendFunctionSql(n: TableNames): string {
  return `
CREATE OR REPLACE FUNCTION ${n.appendFn}(batch json, payloads json, ids text[], communities text[])
RETURNS TABLE (out_id text, out_tx xid8, out_position bigint, out_appended boolean)
-- The log is only ever reached through its indexes: a plan cached while the log was small could
-- otherwise scan it, and be kept as it grows. (Planning each call instead costs more than the insert.)
-- And the batch's sets are joined by hashing: a cached plan guesses 10 rows for each array, and a
-- nested loop over them compared every id with every other (a batch of 1,000 spent 35 ms on it).
-- A plan that needs what is turned off is priced far above the JIT threshold, and compiling it would
-- cost more than running it (a single event's insert was once planned so: 92 ms of JIT for 0.2 ms).
LANGUAGE plpgsql SET enable_seqscan = off SET enable_nestloop = off SET jit = off AS $fn$
DECLARE
  c text;
  written text[];
  known text[];
  described boolean;
BEGIN
  IF cardinality(ids) = 1 AND cardinality(communities) = 1 THEN
    -- the common single event, without the set machinery
    IF json_array_length(batch) <> 1 OR json_array_length(payloads) <> 1
       OR (batch->0->>'id') IS DISTINCT FROM ids[1]
       OR (batch->0->>'communityId') IS DISTINCT FROM communities[1] THEN
      RAISE EXCEPTION 'ledger append: the payloads, ids and communities given do not describe the batch'
        USING ERRCODE = '22023';
    END IF;
    out_id := ids[1];
    PERFORM pg_advisory_xact_lock(hashtextextended('${n.log}:' || communities[1], 0));
    -- a statement after the lock: its snapshot sees the community's last committed number
    INSERT INTO ${n.log} AS l (community_seq, id, type, community_id, subject, occurred_at, recorded_at, source,
                               actor, causation_id, correlation_id, schema_version, data)
    SELECT (SELECT coalesce(max(m.community_seq), 0) + 1 FROM ${n.log} m WHERE m.community_id = communities[1]),
           r.id, r.type, r."communityId", r.subject, r."occurredAt", r."recordedAt", r.source, r.actor,
           r."causationId", r."correlationId", r."schemaVersion",
           (SELECT p.data FROM json_array_elements(payloads) AS p(data))
      FROM json_to_recordset(batch) AS r(id text, type text, "communityId" text, subject text,
             "occurredAt" timestamptz, "recordedAt" timestamptz, source text, actor text, "causationId" text,
             "correlationId" text, "schemaVersion" integer)
    ${reportSingle(n)}
  END IF;

  -- One order for every appender, so that two batches cannot deadlock on each other's locks.
  FOR c IN SELECT DISTINCT x FROM unnest(communities) AS x ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('${n.log}:' || c, 0));
  END LOOP;

  -- The batch's ids already recorded, probed through the id index.
  known := ARRAY(SELECT l.id FROM ${n.log} l WHERE l.id = ANY(ids));

  -- The two arrays side by side: where one is shorter, its columns are null on the other's extra rows.
  WITH input AS (
    SELECT * FROM ROWS FROM (
        json_to_recordset(batch) AS (id text, type text, "communityId" text, subject text,
          "occurredAt" timestamptz, "recordedAt" timestamptz, source text, actor text, "causationId" text,
          "correlationId" text, "schemaVersion" integer),
        json_array_elements(payloads)
      ) WITH ORDINALITY AS r(id, type, "communityId", subject, "occurredAt", "recordedAt", source, actor,
          "causationId", "correlationId", "schemaVersion", data, i)
  ${insertFresh(n, ' AND i.data IS NOT NULL')}
  SELECT coalesce((SELECT array_agg(w.id) FROM w), '{}'),
         (SELECT count(*) FROM input) = cardinality(ids)
           AND NOT EXISTS (SELECT 1 FROM input i
                            WHERE i.id IS DISTINCT FROM ids[i.i::int] OR i.data IS NULL
                               OR i."communityId" IS NULL OR i."communityId" <> ALL(communities))
    INTO written, described;
  IF NOT described THEN
    RAISE EXCEPTION 'ledger append: the payloads, ids and communities given do not describe the batch'
      USING ERRCODE = '22023';
  END IF;

  RETURN QUERY
    SELECT t.id, l.tx, l.position,
           w.id IS NOT NULL AND t.i = min(t.i) OVER (PARTITION BY t.id)
      FROM unnest(ids) WITH ORDINALITY AS t(id, i)
      JOIN (SELECT l.id, l.tx, l.position FROM ${n.log} l WHERE l.id = ANY(ids)) l ON l.id = t.id
      LEFT JOIN unnest(written) AS w(id) ON w.id = t.id
     ORDER BY t.i;
END
$fn$;
`;
}

/**
 * The append function of a log whose `data` column is `jsonb` (logs created before it became
 * `json`): the batch arrives as one `jsonb` array. Same contract as `appendFunctionSql`.
 */
export function legacyAppendFunctionSql(n: TableNames): string {
  return `
CREATE OR REPLACE FUNCTION ${n.appendFn}(batch jsonb)
RETURNS TABLE (out_id text, out_tx xid8, out_position bigint, out_appended boolean)
-- The log is only ever reached through its indexes: a plan cached while the log was small could
-- otherwise scan it, and be kept as it grows. (Planning each call instead costs more than the insert.)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  c text;
  e jsonb;
  written text[];
  ids text[];
  known text[];
BEGIN
  IF jsonb_array_length(batch) = 1 THEN
    -- the common single event, without the set machinery
    e := batch->0;
    out_id := e->>'id';
    PERFORM pg_advisory_xact_lock(hashtextextended('${n.log}:' || (e->>'communityId'), 0));
    -- a statement after the lock: its snapshot sees the community's last committed number
    INSERT INTO ${n.log} AS l (community_seq, id, type, community_id, subject, occurred_at, recorded_at, source,
                               actor, causation_id, correlation_id, schema_version, data)
    VALUES ((SELECT coalesce(max(m.community_seq), 0) + 1 FROM ${n.log} m WHERE m.community_id = e->>'communityId'),
            out_id, e->>'type', e->>'communityId', e->>'subject', (e->>'occurredAt')::timestamptz,
            (e->>'recordedAt')::timestamptz, e->>'source', e->>'actor', e->>'causationId', e->>'correlationId',
            (e->>'schemaVersion')::integer, e->'data')
    ${reportSingle(n)}
  END IF;

  FOR c IN SELECT DISTINCT x->>'communityId' FROM jsonb_array_elements(batch) AS x ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('${n.log}:' || c, 0));
  END LOOP;

  -- The batch's ids already recorded, probed through the id index. (Joined against the set-returning
  -- batch instead, the planner guesses 100 input rows and scans the whole log for each batch.)
  ids := ARRAY(SELECT x->>'id' FROM jsonb_array_elements(batch) AS x);
  known := ARRAY(SELECT l.id FROM ${n.log} l WHERE l.id = ANY(ids));

  WITH input AS (
    SELECT t.i, r.*
      FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(x, i),
           jsonb_to_record(t.x) AS r(id text, type text, "communityId" text, subject text, "occurredAt" timestamptz,
             "recordedAt" timestamptz, source text, actor text, "causationId" text, "correlationId" text,
             "schemaVersion" integer, data jsonb)
  ${insertFresh(n)}
  SELECT coalesce(array_agg(w.id), '{}') INTO written FROM w;

  RETURN QUERY
    SELECT t.x->>'id', l.tx, l.position,
           w.id IS NOT NULL AND t.i = min(t.i) OVER (PARTITION BY t.x->>'id')
      FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(x, i)
      JOIN (SELECT l.id, l.tx, l.position FROM ${n.log} l WHERE l.id = ANY(ids)) l ON l.id = t.x->>'id'
      LEFT JOIN unnest(written) AS w(id) ON w.id = t.x->>'id'
     ORDER BY t.i;
END
$fn$;
`;
}
