export type TableNames = {
  log: string;
  sequence: string;
  appendFn: string;
  channel: string;
};

export function tableNames(prefix: string): TableNames {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new RangeError(`Invalid ledger prefix: ${prefix}`);
  if (prefix === 'ledger_events') throw new RangeError('ledger_events is the archive projection, not a ledger prefix');
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
  position        bigint      NOT NULL DEFAULT nextval('${n.sequence}') PRIMARY KEY,
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
  data            jsonb       NOT NULL,
  UNIQUE (community_id, community_seq)
);
ALTER SEQUENCE ${n.sequence} OWNED BY ${n.log}.position;
CREATE INDEX IF NOT EXISTS ${n.log}_tx_position ON ${n.log} (tx, position);
CREATE INDEX IF NOT EXISTS ${n.log}_community_tx_position ON ${n.log} (community_id, tx, position);
`;
}

/**
 * One round trip per batch: lock the batch's communities (before the transaction takes an xid, so
 * per community the xid order is the commit order), skip ids already recorded, insert the rest with
 * the next per-community sequence number, and NOTIFY subscribers in the same transaction.
 */
export function appendFunctionSql(n: TableNames): string {
  return `
CREATE OR REPLACE FUNCTION ${n.appendFn}(batch jsonb)
RETURNS TABLE (out_id text, out_tx xid8, out_position bigint, out_appended boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
  c text;
  e jsonb;
  seq bigint;
  found_tx xid8;
  found_position bigint;
  wrote boolean := false;
BEGIN
  FOR c IN SELECT DISTINCT x->>'communityId' FROM jsonb_array_elements(batch) AS x ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('${n.log}:' || c, 0));
  END LOOP;
  FOR e IN SELECT x FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(x, i) ORDER BY i LOOP
    out_id := e->>'id';
    SELECT l.tx, l.position INTO found_tx, found_position FROM ${n.log} l WHERE l.id = out_id;
    IF FOUND THEN
      out_tx := found_tx; out_position := found_position; out_appended := false;
      RETURN NEXT;
      CONTINUE;
    END IF;
    SELECT coalesce(max(l.community_seq), 0) + 1 INTO seq FROM ${n.log} l WHERE l.community_id = e->>'communityId';
    INSERT INTO ${n.log} AS l (community_seq, id, type, community_id, subject, occurred_at, recorded_at, source,
                               actor, causation_id, correlation_id, schema_version, data)
    VALUES (seq, out_id, e->>'type', e->>'communityId', e->>'subject', (e->>'occurredAt')::timestamptz,
            (e->>'recordedAt')::timestamptz, e->>'source', e->>'actor', e->>'causationId', e->>'correlationId',
            (e->>'schemaVersion')::integer, e->'data')
    ON CONFLICT (id) DO NOTHING
    RETURNING l.tx, l.position INTO found_tx, found_position;
    IF FOUND THEN
      wrote := true;
      out_appended := true;
    ELSE
      -- the same id was appended concurrently for another community: report that one
      SELECT l.tx, l.position INTO found_tx, found_position FROM ${n.log} l WHERE l.id = out_id;
      out_appended := false;
    END IF;
    out_tx := found_tx; out_position := found_position;
    RETURN NEXT;
  END LOOP;
  IF wrote THEN
    PERFORM pg_notify('${n.channel}', '');
  END IF;
END
$fn$;
`;
}
