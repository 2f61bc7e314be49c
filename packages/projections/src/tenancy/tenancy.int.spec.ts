import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { Client } from 'pg';
import { CatalogQuery } from '../catalog/catalog.query';
import { CommerceQuery } from '../commerce/commerce.query';
import { runMigrations } from '../data-source';
import {
  APP_ROLE,
  TENANT_POLICY,
  ensureRowLevelSecurity,
  systemConnectionUrl,
  withSessionSettings,
} from './row-level-security';
import { TenantDataSource, createTenantDataSource } from './tenant-data-source';
import { runAsSystem, runAsTenant, runWithoutTenant } from './tenant-context';

const A = 'community_a';
const B = 'community_b';

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function seed(c: Client, community: string): Promise<void> {
  await c.query(
    `INSERT INTO catalog_communities (community_id, name, region, state, version) VALUES ($1, $1, 'us', '{}', 1)`,
    [community],
  );
  await c.query(
    `INSERT INTO member_states (community_id, member_id, doc) VALUES ($1, 'm1', '{}'), ($1, 'm2', '{}')`,
    [community],
  );
  await c.query(
    `INSERT INTO commerce_promo_codes (community_id, promo_code_id, code_key, stripe_promotion_code_id, data)
     VALUES ($1, 'promo1', 'SAVE', 'promo_' || $1, '{"code": "SAVE"}')`,
    [community],
  );
  await c.query(
    `INSERT INTO access_grants (id, community_id, member_id, resource_kind, source, valid_from, suspended, caused_by, recorded_at)
     VALUES ($1 || ':g1', $1, 'm1', 'COMMUNITY', 'COMPLIMENTARY', now(), false, 'evt_1', now())`,
    [community],
  );
}

const SEEDED = ['catalog_communities', 'member_states', 'commerce_promo_codes', 'access_grants'];

describe('tenant isolation with row-level security', () => {
  let db: TestDatabase;
  let reads: TenantDataSource;

  beforeAll(async () => {
    db = await createTestDatabase('tenancy');
    await runMigrations(db.url);
    await ensureRowLevelSecurity(db.url);
    await withClient(systemConnectionUrl(db.url), async (c) => {
      await seed(c, A);
      await seed(c, B);
    });
    reads = createTenantDataSource({ url: db.url, poolSize: 1 });
    await reads.initialize();
  });

  afterAll(async () => {
    await reads?.destroy();
    await db?.drop();
  });

  const communitiesIn = (table: string) =>
    reads
      .query<{ community_id: string }[]>(`SELECT DISTINCT community_id FROM ${table} ORDER BY 1`)
      .then((rows) => rows.map((r) => r.community_id));

  it('enables and forces row-level security, with the tenant policy, on every table that has community_id', async () => {
    const rows = await withClient(
      db.url,
      async (c) =>
        (
          await c.query<{ table: string; rls: boolean; forced: boolean; policies: string[] }>(
            `SELECT k.relname AS table, k.relrowsecurity AS rls, k.relforcerowsecurity AS forced,
                  array(SELECT polname FROM pg_policy WHERE polrelid = k.oid ORDER BY polname)::text[] AS policies
             FROM information_schema.columns col
             JOIN pg_class k ON k.relname = col.table_name AND k.relnamespace = 'public'::regnamespace AND k.relkind = 'r'
            WHERE col.table_schema = 'public' AND col.column_name = 'community_id'
            ORDER BY 1`,
          )
        ).rows,
    );
    expect(rows.length).toBeGreaterThanOrEqual(20);
    expect(rows.map((r) => r.table)).toEqual(
      expect.arrayContaining([...SEEDED, 'ledger_events', 'member_facts']),
    );
    for (const r of rows)
      expect(r).toEqual({ table: r.table, rls: true, forced: true, policies: [TENANT_POLICY] });
  });

  it('runs API reads as a role that is neither superuser, nor able to bypass RLS, nor owner of any table', async () => {
    const [role] = await withClient(
      db.url,
      async (c) =>
        (
          await c.query('SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1', [
            APP_ROLE,
          ])
        ).rows,
    );
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: false });
    const owned = await withClient(
      db.url,
      async (c) => (await c.query(`SELECT tablename FROM pg_tables WHERE tableowner = $1`, [APP_ROLE])).rows,
    );
    expect(owned).toEqual([]);
    const [me] = await runAsTenant(A, () =>
      reads.query('SELECT current_user AS role, session_user AS login'),
    );
    expect(me.role).toBe(APP_ROLE);
  });

  it('shows a tenant only its own rows, in every seeded table', async () => {
    for (const table of SEEDED) {
      expect(await runAsTenant(A, () => communitiesIn(table))).toEqual([A]);
      expect(await runAsTenant(B, () => communitiesIn(table))).toEqual([B]);
    }
  });

  it("keeps a query object's lookups inside the tenant, even when asked about another community", async () => {
    const catalog = new CatalogQuery(reads);
    const commerce = new CommerceQuery(reads);
    await runAsTenant(A, async () => {
      expect(await catalog.exists(A)).toBe(true);
      expect(await catalog.exists(B)).toBe(false);
      expect((await catalog.list()).map((c) => c.communityId)).toEqual([A]);
      expect(await commerce.promoCodes(B)).toEqual([]);
      expect(await commerce.promoCodes(A)).toHaveLength(1);
    });
  });

  it('shows nothing to a query made without a tenant (fails closed)', async () => {
    for (const table of SEEDED) {
      expect(await communitiesIn(table)).toEqual([]);
      expect(await runAsTenant(A, () => runWithoutTenant(() => communitiesIn(table)))).toEqual([]);
    }
  });

  it('shows every community to system work', async () => {
    expect(await runAsSystem(() => communitiesIn('member_states'))).toEqual([A, B]);
  });

  it('returns a pooled connection with no tenant after a tenant transaction', async () => {
    // The pool holds one connection, so everything below reuses the tenant transaction's connection.
    const [{ pid }] = await runAsTenant(A, () =>
      reads.query<{ pid: number }[]>('SELECT pg_backend_pid() AS pid'),
    );
    expect(await runAsTenant(A, () => communitiesIn('member_states'))).toEqual([A]);

    const runner = reads.createQueryRunner();
    try {
      const [s] = await runner.query(
        `SELECT current_setting('gatehouse.community', true) AS tenant, current_user AS role, pg_backend_pid() AS pid`,
      );
      expect(s.pid).toBe(pid);
      expect(s.tenant ?? '').toBe('');
      expect(s.role).toBe(APP_ROLE);
      // Outside the wrapper (a repository, a raw runner) the connection sees nothing either.
      expect(await runner.query('SELECT community_id FROM member_states')).toEqual([]);
    } finally {
      await runner.release();
    }
    expect(await communitiesIn('member_states')).toEqual([]);
  });

  it('refuses writes through the API role, whatever the tenant', async () => {
    const insert = `INSERT INTO member_states (community_id, member_id, doc) VALUES ('${A}', 'intruder', '{}')`;
    await expect(runAsTenant(A, () => reads.query(insert))).rejects.toThrow(/read-only transaction/);
    const runner = reads.createQueryRunner();
    try {
      await expect(runner.query(insert)).rejects.toThrow(/permission denied for table member_states/);
      await expect(runner.query(`DELETE FROM member_states`)).rejects.toThrow(/permission denied/);
    } finally {
      await runner.release();
    }
    const count = await runAsSystem(() =>
      reads.query(`SELECT count(*)::int AS n FROM member_states WHERE member_id = 'intruder'`),
    );
    expect(count).toEqual([{ n: 0 }]);
  });

  it('scopes a transaction of the read data source to the tenant', async () => {
    const seen = await runAsTenant(B, () =>
      reads.transaction((em) =>
        em.query<{ community_id: string }[]>('SELECT community_id FROM catalog_communities'),
      ),
    );
    expect(seen).toEqual([{ community_id: B }]);
  });

  it('covers a table added by a later migration at the next start, and changes nothing when all is in place', async () => {
    expect((await ensureRowLevelSecurity(db.url)).changed).toEqual([]);
    await withClient(db.url, (c) =>
      c.query(`CREATE TABLE later_read_model (community_id text NOT NULL, note text)`),
    );
    const report = await ensureRowLevelSecurity(db.url);
    expect(report.changed).toEqual(['later_read_model']);
    expect(report.tables).toContain('later_read_model');
    await withClient(systemConnectionUrl(db.url), (c) =>
      c.query(`INSERT INTO later_read_model VALUES ($1, 'a'), ($2, 'b')`, [A, B]),
    );
    expect(await runAsTenant(B, () => communitiesIn('later_read_model'))).toEqual([B]);
  });

  it('applies concurrently from several processes without error', async () => {
    const reports = await Promise.all([1, 2, 3].map(() => ensureRowLevelSecurity(db.url)));
    expect(reports.map((r) => r.changed)).toEqual([[], [], []]);
  });

  describe('a table owner that is not a superuser (FORCE applies to it)', () => {
    const owner = `gh_owner_${randomBytes(4).toString('hex')}`;
    const ownerUrl = () => {
      const u = new URL(db.url);
      u.username = owner;
      return u.toString();
    };

    beforeAll(async () => {
      await withClient(db.url, async (c) => {
        // It logs in with the test server's password, where that server asks for one (the embedded
        // and the containerized PostgreSQL do).
        const password = decodeURIComponent(new URL(db.url).password);
        await c.query(
          `CREATE ROLE ${owner} LOGIN${password ? ` PASSWORD '${password.replace(/'/g, "''")}'` : ''}`,
        );
        await c.query(`ALTER TABLE member_states OWNER TO ${owner}`);
      });
    });

    afterAll(async () => {
      await withClient(db.url, async (c) => {
        await c.query(`ALTER TABLE member_states OWNER TO CURRENT_USER`);
        await c.query(`DROP ROLE IF EXISTS ${owner}`);
      });
    });

    it('sees nothing without the system setting, and every community with it', async () => {
      const count = (url: string) =>
        withClient(
          url,
          async (c) => (await c.query('SELECT count(*)::int AS n FROM member_states')).rows[0].n,
        );
      expect(await count(ownerUrl())).toBe(0);
      expect(await count(systemConnectionUrl(ownerUrl()))).toBe(4);
    });

    it('may write any community as system, and only its own under a tenant', async () => {
      await withClient(withSessionSettings(ownerUrl(), { 'gatehouse.community': A }), async (c) => {
        await expect(
          c.query(`INSERT INTO member_states (community_id, member_id, doc) VALUES ($1, 'm9', '{}')`, [B]),
        ).rejects.toThrow(/row-level security/);
      });
      await withClient(systemConnectionUrl(ownerUrl()), async (c) => {
        await c.query(`DELETE FROM member_states WHERE member_id = 'm9'`);
      });
    });
  });
});
