import { Client } from 'pg';
import { SYSTEM_TENANT, TENANT_SETTING } from './tenant-context';
import { UnsafeAppRoleError } from './tenancy.errors';

/** The role API reads run as: neither owner nor superuser, SELECT only, bound by every policy. */
export const APP_ROLE = 'gatehouse_app';
/** The policy on every table that has a `community_id` column. */
export const TENANT_POLICY = 'gatehouse_tenant';

// Per database, like the migrations lock: two processes booting together apply this once.
const RLS_LOCK_KEY = 7_215_004_312;

// libpq splits `options` on whitespace and treats backslashes as escapes.
const SETTING_VALUE = /^[^\s\\]+$/;

/**
 * The URL with `-c name=value` added to its `options` (kept alongside any the URL already has):
 * node-postgres sends them at connect, so every connection of a pool starts with them.
 */
export function withSessionSettings(url: string, settings: Readonly<Record<string, string>>): string {
  const u = new URL(url);
  const added = Object.entries(settings).map(([name, value]) => {
    if (!SETTING_VALUE.test(name) || !SETTING_VALUE.test(value))
      throw new RangeError(`Unsafe session setting ${name}`);
    return `-c ${name}=${value}`;
  });
  const options = [u.searchParams.get('options'), ...added].filter(Boolean).join(' ');
  u.searchParams.set('options', options);
  return u.toString();
}

/** Connections for system work: the configured user, reading and writing every community. */
export function systemConnectionUrl(url: string): string {
  return withSessionSettings(url, { [TENANT_SETTING]: SYSTEM_TENANT });
}

/** Connections for API reads: the app role, with no tenant until a transaction sets one. */
export function appConnectionUrl(url: string): string {
  return withSessionSettings(url, { role: APP_ROLE });
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const setting = `current_setting('${TENANT_SETTING}', true)`;
const TENANT_RULE = `(community_id = ${setting} OR ${setting} = '${SYSTEM_TENANT}')`;

export type RowLevelSecurityReport = {
  schema: string;
  /** Every table under the policy (with a `community_id` column). */
  tables: string[];
  /** What this call changed (empty when everything was already in place). */
  changed: string[];
};

// Concurrent GRANTs on one role can fail with "tuple concurrently updated" (XX000); CREATE ROLE is
// cluster-wide, so other databases' boots race on it too.
const RETRYABLE = new Set(['XX000', '40001', '40P01']);

async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5 || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

async function ensureAppRole(c: Client, changed: string[]): Promise<void> {
  await withRetry(async () => {
    const [{ found }] = (
      await c.query<{ found: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS found',
        [APP_ROLE],
      )
    ).rows;
    if (!found) {
      await c.query(`DO $$ BEGIN
        CREATE ROLE ${quoteIdent(APP_ROLE)} NOLOGIN NOSUPERUSER NOBYPASSRLS;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
      END $$`);
      changed.push(`role ${APP_ROLE}`);
    }
  });
  const { rows } = await c.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
    [APP_ROLE],
  );
  if (rows[0]?.rolsuper) throw new UnsafeAppRoleError(APP_ROLE, 'is a superuser');
  if (rows[0]?.rolbypassrls) throw new UnsafeAppRoleError(APP_ROLE, 'has BYPASSRLS');
  await withRetry(async () => {
    // A superuser may SET ROLE to anyone; anyone else needs the membership.
    const [{ member }] = (
      await c.query<{ member: boolean }>(`SELECT pg_has_role(current_user, $1, 'MEMBER') AS member`, [
        APP_ROLE,
      ])
    ).rows;
    if (!member) {
      await c.query(`GRANT ${quoteIdent(APP_ROLE)} TO CURRENT_USER`);
      changed.push(`${APP_ROLE} granted to the connecting user`);
    }
  });
}

type TableState = {
  table: string;
  rls: boolean;
  forced: boolean;
  policy: boolean;
  readable: boolean;
};

/**
 * Puts every table of the schema that has a `community_id` column under row-level security (enabled
 * and forced, one tenant policy), creates the API role and lets it read those tables. Idempotent and
 * cheap when nothing is missing (no table lock is taken then); run after migrations at every start,
 * so tables that later migrations add are covered too.
 */
export async function ensureRowLevelSecurity(
  url: string,
  options: { schema?: string } = {},
): Promise<RowLevelSecurityReport> {
  const c = new Client({ connectionString: url, application_name: 'gatehouse-tenancy' });
  await c.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [RLS_LOCK_KEY]);
    try {
      const changed: string[] = [];
      await ensureAppRole(c, changed);
      const [{ schema }] = (
        await c.query<{ schema: string }>('SELECT coalesce($1::text, current_schema()) AS schema', [
          options.schema ?? null,
        ])
      ).rows;
      const s = quoteIdent(schema);
      const { rows: tables } = await c.query<TableState>(
        `SELECT c.table_name AS table,
                k.relrowsecurity AS rls,
                k.relforcerowsecurity AS forced,
                EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = k.oid AND p.polname = $3) AS policy,
                has_table_privilege($2, k.oid, 'SELECT') AS readable
           FROM information_schema.columns c
           JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
           JOIN pg_namespace n ON n.nspname = c.table_schema
           JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = n.oid
          WHERE c.table_schema = $1 AND c.column_name = 'community_id' AND t.table_type = 'BASE TABLE'
          ORDER BY c.table_name`,
        [schema, APP_ROLE, TENANT_POLICY],
      );
      const schemaUsable = (
        await c.query<{ ok: boolean }>(`SELECT has_schema_privilege($1, $2, 'USAGE') AS ok`, [
          APP_ROLE,
          schema,
        ])
      ).rows[0].ok;
      const applied = await withRetry(async () => {
        const done: string[] = [];
        await c.query('BEGIN');
        try {
          if (!schemaUsable) {
            await c.query(`GRANT USAGE ON SCHEMA ${s} TO ${quoteIdent(APP_ROLE)}`);
            done.push(`USAGE on ${schema}`);
          }
          for (const t of tables) {
            const name = `${s}.${quoteIdent(t.table)}`;
            if (!t.rls) await c.query(`ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY`);
            if (!t.forced) await c.query(`ALTER TABLE ${name} FORCE ROW LEVEL SECURITY`);
            if (!t.policy) {
              await c.query(
                `CREATE POLICY ${quoteIdent(TENANT_POLICY)} ON ${name} USING ${TENANT_RULE} WITH CHECK ${TENANT_RULE}`,
              );
            }
            if (!t.readable) await c.query(`GRANT SELECT ON ${name} TO ${quoteIdent(APP_ROLE)}`);
            if (!t.rls || !t.forced || !t.policy || !t.readable) done.push(t.table);
          }
          await c.query('COMMIT');
          return done;
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
      });
      return { schema, tables: tables.map((t) => t.table), changed: [...changed, ...applied] };
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [RLS_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
}
