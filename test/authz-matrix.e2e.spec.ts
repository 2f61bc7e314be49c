import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { buildSchema } from 'graphql';
import jwt from 'jsonwebtoken';
import { v7 as uuidv7 } from 'uuid';
import {
  bearer,
  graphqlClient,
  okData,
  type Caller,
  type Gql,
  type GqlResponse,
} from './support/graphql-client';
import { buildOperation, type BuiltOperation, type TargetFixture } from './support/operation-builder';
import { inPool, startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';

// Every contract operation × every kind of caller × (community A, community B, a community that does
// not exist), against the started server. The expected outcome comes from the contract's Auth rules.

const contract = buildSchema(readFileSync('/work/shared/contract/contract.graphql', 'utf8'));
const secret = `authz-matrix-${randomBytes(12).toString('hex')}`;

type Rule = 'platform' | 'admin' | 'memberSelf';
// The contract's Auth section, one line per operation.
const RULES: Record<string, Rule> = {
  community: 'admin',
  membership: 'memberSelf',
  canAccess: 'memberSelf',
  accessHistory: 'memberSelf',
  accessList: 'admin',
  ledgerEvents: 'admin',
  previewTierChange: 'memberSelf',
  prorationOutcomes: 'admin',
  upsellOffers: 'memberSelf',
  createCommunity: 'platform',
  createTier: 'admin',
  createGroup: 'admin',
  createEvent: 'admin',
  createPrice: 'admin',
  changePrice: 'admin',
  createPromoCode: 'admin',
  createInvitationLink: 'admin',
  startCheckout: 'memberSelf',
  changeTier: 'memberSelf',
  billingPortalUrl: 'memberSelf',
  grantComplimentaryAccess: 'admin',
  revokeComplimentaryAccess: 'admin',
  setPaidOnly: 'admin',
  importStripeSubscriptions: 'admin',
  migrateGroupToTiers: 'admin',
  rebuildProjections: 'platform',
};

type CallerName = 'none' | 'm1' | 'm2' | 'adminA' | 'adminB' | 'platform';
type TargetName = 'A' | 'B' | 'X';
const CALLER_NAMES: CallerName[] = ['none', 'm1', 'm2', 'adminA', 'adminB', 'platform'];
const TARGETS: TargetName[] = ['A', 'B', 'X'];
const MEMBER = 'member-1';

type Expected = boolean | 'either';
type Variant = {
  label: string;
  kind: 'query' | 'mutation';
  field: string;
  overrides?: (t: TargetFixture) => Record<string, unknown>;
  expected: (caller: CallerName, target: TargetName) => Expected;
};

function byRule(rule: Rule) {
  return (caller: CallerName, target: TargetName): Expected => {
    if (caller === 'platform') return true;
    if (rule === 'platform') return false;
    if ((caller === 'adminA' && target === 'A') || (caller === 'adminB' && target === 'B')) return true;
    return rule === 'memberSelf' && caller === 'm1' && target === 'A';
  };
}

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const kind of ['query', 'mutation'] as const) {
    const root = kind === 'query' ? contract.getQueryType()! : contract.getMutationType()!;
    for (const field of Object.keys(root.getFields())) {
      const rule = RULES[field];
      out.push({
        label: field,
        kind,
        field,
        expected: rule ? byRule(rule) : () => false,
        overrides: (t) => {
          if (field === 'startCheckout') {
            const input = buildOperation(contract, kind, field, t).variables.input as Record<string, unknown>;
            return { input: { ...input, memberId: t.memberId } };
          }
          if (field === 'createPromoCode') {
            const input = buildOperation(contract, kind, field, t).variables.input as Record<string, unknown>;
            return { input: { ...input, percentOff: 10 } };
          }
          return {};
        },
      });
    }
  }
  // Optional arguments that change who may call.
  out.push({
    label: 'startCheckout+invitation',
    kind: 'mutation',
    field: 'startCheckout',
    overrides: (t) => {
      const input = buildOperation(contract, 'mutation', 'startCheckout', t).variables.input as Record<
        string,
        unknown
      >;
      return { input: { ...input, invitationToken: t.invitationToken } };
    },
    // Without a token an invitation link is enough; the contract says nothing of signed-in non-admins here.
    expected: (caller, target) =>
      caller === 'none' ? true : byRule('admin')(caller, target) ? true : 'either',
  });
  out.push({
    label: 'prorationOutcomes+member',
    kind: 'query',
    field: 'prorationOutcomes',
    overrides: (t) => ({ memberId: t.memberId }),
    expected: byRule('admin'),
  });
  out.push({
    label: 'rebuildProjections+community',
    kind: 'mutation',
    field: 'rebuildProjections',
    overrides: (t) => ({ communityId: t.communityId }),
    expected: byRule('platform'),
  });
  return out;
}

type Call = {
  variant: Variant;
  caller: CallerName;
  target: TargetName;
  expected: Expected;
  op: BuiltOperation;
};
type Outcome = Call & { res: GqlResponse; refused: boolean; problems: string[] };

const AUTH_CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN']);
const codesOf = (r: GqlResponse) => (r.errors ?? []).map((e) => String(e.extensions?.code ?? '?'));

describe('authorization matrix generated from the contract', () => {
  let gh: GatehouseUnderTest;
  let gql: Gql;
  const fixtures = {} as Record<TargetName, TargetFixture & { stripePriceId: string; name: string }>;
  const tokens = {} as Record<CallerName, string | null>;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_SECRET_KEY: 'sk_test_authz_matrix',
        STRIPE_WEBHOOK_SECRET: 'whsec_authz_matrix',
        GATEHOUSE_PUBLIC_URL: 'https://join.example.com',
      },
      'authz_e2e',
    );
    gql = graphqlClient(gh.server.url);
    const root = bearer(secret, { sub: 'root', roles: ['platform-admin'] });
    for (const name of ['A', 'B'] as const) {
      const communityName = `Matrix community ${name} ${randomBytes(3).toString('hex')}`;
      const c = (
        await okData(
          gql,
          'mutation($n: String!) { createCommunity(input: { name: $n, region: EU }) { id } }',
          { n: communityName },
          root,
        )
      ).createCommunity.id as string;
      const groupId = (
        await okData(
          gql,
          'mutation($c: ID!) { createGroup(input: { communityId: $c, name: "Workshop" }) { id } }',
          { c },
          root,
        )
      ).createGroup.id as string;
      const tierId = (
        await okData(
          gql,
          'mutation($c: ID!, $g: ID!) { createTier(input: { communityId: $c, name: "Gold", rank: 1, groupIds: [$g] }) { id } }',
          { c, g: groupId },
          root,
        )
      ).createTier.id as string;
      const eventId = (
        await okData(
          gql,
          'mutation($c: ID!) { createEvent(input: { communityId: $c, name: "Meetup", startsAt: "2031-01-01T18:00:00Z", endsAt: "2031-01-01T20:00:00Z", capacity: 10 }) { id } }',
          { c },
          root,
        )
      ).createEvent.id as string;
      const price = (
        await okData(
          gql,
          'mutation($c: ID!, $t: ID!) { createPrice(input: { communityId: $c, product: { kind: TIER, id: $t }, amount: 1500, currency: "eur", frequency: MONTHLY }) { id stripePriceId } }',
          { c, t: tierId },
          root,
        )
      ).createPrice as { id: string; stripePriceId: string };
      const invitationToken = (
        await okData(
          gql,
          'mutation($c: ID!, $p: ID!) { createInvitationLink(input: { communityId: $c, priceIds: [$p], audience: ANYONE }) { token } }',
          { c, p: price.id },
          root,
        )
      ).createInvitationLink.token as string;
      fixtures[name] = {
        communityId: c,
        memberId: MEMBER,
        tierId,
        groupId,
        eventId,
        priceId: price.id,
        stripePriceId: price.stripePriceId,
        invitationToken,
        name: communityName,
      };
    }
    fixtures.X = {
      communityId: uuidv7(),
      memberId: MEMBER,
      tierId: uuidv7(),
      groupId: uuidv7(),
      eventId: uuidv7(),
      priceId: uuidv7(),
      stripePriceId: 'price_nowhere',
      invitationToken: randomBytes(16).toString('base64url'),
      name: 'nowhere',
    };
    const callers: Record<Exclude<CallerName, 'none'>, Caller> = {
      m1: { sub: MEMBER, roles: [`member:${fixtures.A.communityId}`] },
      m2: { sub: 'member-2', roles: [`member:${fixtures.A.communityId}`] },
      adminA: { sub: 'admin-a', roles: [`admin:${fixtures.A.communityId}`] },
      adminB: { sub: 'admin-b', roles: [`admin:${fixtures.B.communityId}`] },
      platform: { sub: 'root', roles: ['platform-admin'] },
    };
    tokens.none = null;
    for (const [k, c] of Object.entries(callers)) tokens[k as CallerName] = bearer(secret, c);
  }, 120_000);

  afterAll(async () => {
    await gh?.close();
  });

  /** Every id and name of the communities this caller may not see. */
  function foreignStrings(caller: CallerName): string[] {
    const visible: TargetName[] =
      caller === 'platform' ? ['A', 'B'] : caller === 'adminB' ? ['B'] : caller === 'none' ? [] : ['A'];
    return (['A', 'B'] as const)
      .filter((t) => !visible.includes(t))
      .flatMap((t) => {
        const f = fixtures[t];
        return [
          f.communityId,
          f.tierId,
          f.groupId,
          f.eventId,
          f.priceId,
          f.stripePriceId,
          f.name,
          f.invitationToken,
        ];
      });
  }

  async function run(call: Call): Promise<Outcome> {
    const res = await gql(call.op.query, call.op.variables, tokens[call.caller]);
    const codes = codesOf(res);
    const refused = codes.some((c) => AUTH_CODES.has(c));
    const problems: string[] = [];
    if (call.expected === true && refused) problems.push(`refused an allowed caller: ${codes.join(',')}`);
    if (call.expected === false) {
      const want = call.caller === 'none' ? 'UNAUTHENTICATED' : 'FORBIDDEN';
      if (codes.length !== 1 || codes[0] !== want)
        problems.push(`expected ${want}, got ${codes.join(',') || 'no error'}`);
    }
    if (refused) {
      const value = res.data?.[call.op.field];
      if (value !== undefined && value !== null)
        problems.push(`refused but answered data: ${JSON.stringify(value)}`);
    }
    const dataText = JSON.stringify(res.data ?? null);
    for (const s of foreignStrings(call.caller)) {
      if (dataText.includes(s)) problems.push(`data carries ${s} of a community the caller may not see`);
    }
    if (/\n\s+at |stacktrace/i.test(res.text)) problems.push('answer carries a stack trace');
    return { ...call, res, refused, problems };
  }

  function summary(outcomes: Outcome[], failures: string[]): string {
    const mark = (o: Outcome | undefined) => (!o ? ' ' : o.problems.length ? '!' : o.refused ? '.' : 'Y');
    const labels = [...new Set(outcomes.map((o) => o.variant.label))];
    const width = Math.max(...labels.map((l) => l.length));
    const lines = [
      `cells: A B X (community A, community B, no such community); Y passed auth, . refused, ! wrong`,
      `${''.padEnd(width)}  ${CALLER_NAMES.map((c) => c.padEnd(8)).join('')}`,
    ];
    for (const label of labels) {
      const cells = CALLER_NAMES.map((c) =>
        TARGETS.map((t) =>
          mark(outcomes.find((o) => o.variant.label === label && o.caller === c && o.target === t)),
        )
          .join('')
          .padEnd(8),
      );
      lines.push(`${label.padEnd(width)}  ${cells.join('')}`);
    }
    return [...lines, '', ...failures].join('\n');
  }

  it('every contract operation has an authorization rule', () => {
    const fields = [
      ...Object.keys(contract.getQueryType()!.getFields()),
      ...Object.keys(contract.getMutationType()!.getFields()),
    ];
    expect(fields.filter((f) => !RULES[f])).toEqual([]);
  });

  it('refuses every caller the contract refuses, lets every allowed caller through, leaks nothing, and answers alike for an existing and a missing community', async () => {
    const calls: Call[] = [];
    for (const variant of variants()) {
      for (const caller of CALLER_NAMES) {
        for (const target of TARGETS) {
          const op = buildOperation(
            contract,
            variant.kind,
            variant.field,
            fixtures[target],
            variant.overrides,
          );
          calls.push({ variant, caller, target, expected: variant.expected(caller, target), op });
        }
      }
    }

    // The calls that must be refused go first, all of them, and must leave the ledger untouched.
    const before = await gh.ledgerCount();
    const refusedPhase = await inPool(
      calls.filter((c) => c.expected === false).map((c) => () => run(c)),
      6,
    );
    const after = await gh.ledgerCount();
    const allowedPhase: Outcome[] = [];
    for (const c of calls.filter((x) => x.expected !== false)) allowedPhase.push(await run(c));
    const outcomes = [...refusedPhase, ...allowedPhase];

    const failures = outcomes
      .filter((o) => o.problems.length)
      .map(
        (o) =>
          `${o.variant.label} by ${o.caller} on ${o.target}: ${o.problems.join('; ')}\n    ${o.res.text.slice(0, 300)}`,
      );
    if (after !== before) failures.push(`refused calls wrote ${after - before} ledger event(s)`);

    // A refusal must not tell community B (exists) from X (does not).
    const key = (o: Outcome) => `${o.variant.label}|${o.caller}`;
    const onX = new Map(outcomes.filter((o) => o.target === 'X').map((o) => [key(o), o]));
    const shape = (r: GqlResponse) =>
      JSON.stringify({
        status: r.status,
        data: r.data ?? null,
        errors: (r.errors ?? []).map((e) => [e.message, e.extensions?.code]),
      });
    for (const b of outcomes.filter(
      (o) => o.target === 'B' && o.caller !== 'platform' && o.caller !== 'adminB',
    )) {
      const x = onX.get(key(b))!;
      if ((b.refused || x.refused) && shape(b.res) !== shape(x.res)) {
        failures.push(
          `${b.variant.label} by ${b.caller}: answer on B differs from answer on a missing community\n    B: ${shape(b.res)}\n    X: ${shape(x.res)}`,
        );
      }
    }

    if (failures.length) throw new Error(`authorization matrix failed\n${summary(outcomes, failures)}`);
    expect(outcomes.length).toBe(calls.length);
    // The leak check looks for strings that a permitted answer does carry.
    const seen = outcomes.find(
      (o) => o.variant.label === 'community' && o.caller === 'platform' && o.target === 'B',
    )!;
    expect(seen.res.text).toContain(fixtures.B.communityId);
    expect(seen.res.text).toContain(fixtures.B.tierId);
  }, 120_000);

  it('a token signed with another secret, with alg none, expired, or for another audience of roles is refused', async () => {
    const a = fixtures.A.communityId;
    const query = 'query($id: ID!) { community(id: $id) { id name } }';
    const forged = jwt.sign({ roles: ['platform-admin'] }, 'another-secret-of-the-same-length-xxxxxx', {
      algorithm: 'HS256',
      subject: 'root',
    });
    const none = jwt.sign({ roles: ['platform-admin'] }, '', { algorithm: 'none', subject: 'root' });
    const expired = jwt.sign({ roles: ['platform-admin'], exp: Math.floor(Date.now() / 1000) - 60 }, secret, {
      algorithm: 'HS256',
      subject: 'root',
    });
    const noSubject = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256' });
    for (const token of [forged, none, expired, noSubject, 'not-a-jwt']) {
      const r = await gql(query, { id: a }, token);
      expect(codesOf(r)).toEqual(['UNAUTHENTICATED']);
      expect(r.data?.community ?? null).toBeNull();
      expect(r.text).not.toContain(fixtures.A.name);
    }
    // Roles that look close to a real one grant nothing.
    for (const roles of [
      ['Platform-Admin'],
      [`admin:${a.slice(0, 8)}`],
      [`admin:${a} `],
      [`member:${a}`],
      ['admin:*'],
      ['admin:'],
    ]) {
      const r = await gql(query, { id: a }, bearer(secret, { sub: 'admin-a', roles }));
      expect(codesOf(r)).toEqual(['FORBIDDEN']);
      expect(r.data?.community ?? null).toBeNull();
    }
    const stringRoles = jwt.sign({ roles: 'platform-admin' }, secret, {
      algorithm: 'HS256',
      subject: 'root',
    });
    expect(codesOf(await gql(query, { id: a }, stringRoles))).toEqual(['FORBIDDEN']);
  });

  it('ids of community B inside an operation on community A reveal nothing of B and are answered like ids that do not exist', async () => {
    const mixed = (others: TargetFixture): TargetFixture => ({
      ...others,
      communityId: fixtures.A.communityId,
      memberId: MEMBER,
      invitationToken: others.invitationToken,
    });
    const normalise = (text: string) => {
      let out = text;
      for (const t of ['B', 'X'] as const) {
        const f = fixtures[t];
        for (const s of [f.tierId, f.groupId, f.eventId, f.priceId, f.invitationToken])
          out = out.split(s).join('<foreign>');
      }
      return out.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');
    };
    const failures: string[] = [];
    const bStrings = foreignStrings('adminA');
    for (const variant of variants()) {
      if (RULES[variant.field] === 'platform') continue;
      for (const caller of ['adminA', 'm1'] as const) {
        if (variant.expected(caller, 'A') !== true) continue;
        const withB = buildOperation(
          contract,
          variant.kind,
          variant.field,
          mixed(fixtures.B),
          variant.overrides,
        );
        const withX = buildOperation(
          contract,
          variant.kind,
          variant.field,
          mixed(fixtures.X),
          variant.overrides,
        );
        const rb = await gql(withB.query, withB.variables, tokens[caller]);
        const rx = await gql(withX.query, withX.variables, tokens[caller]);
        const dataText = JSON.stringify(rb.data ?? null);
        const leaked = bStrings.filter((s) => dataText.includes(s));
        if (leaked.length)
          failures.push(
            `${variant.label} by ${caller}: data carries B's ${leaked.join(', ')}\n    ${rb.text.slice(0, 300)}`,
          );
        const errs = (r: GqlResponse) =>
          normalise(JSON.stringify((r.errors ?? []).map((e) => [e.message, e.extensions?.code])));
        if (rb.errors?.length && errs(rb) !== errs(rx)) {
          failures.push(
            `${variant.label} by ${caller}: B's ids answered unlike missing ids\n    B: ${errs(rb)}\n    X: ${errs(rx)}`,
          );
        }
        if (!rb.errors?.length && rx.errors?.length) {
          failures.push(
            `${variant.label} by ${caller}: accepted B's ids in community A but refused missing ids: ${errs(rx)}`,
          );
        }
      }
    }
    if (failures.length) throw new Error(`cross-community ids:\n${failures.join('\n')}`);
  }, 90_000);
});
