import { BadUserInputError } from '@gatehouse/domain';
import {
  archiveProjection,
  at,
  catalogFacts,
  checkoutEvent,
  invoiceEvent,
  startAccessHarness,
  stripeLedgerEvent,
  subscriptionEvent,
  type AccessHarness,
} from '@gatehouse/projections';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { PostgresLedger } from '../../../ledger/src/adapters/postgres/postgres-ledger';
import { AccessChangeKind, AccessSource, MembershipStatus, ResourceKind } from '../graphql/enums';
import { AccessService } from './access.service';

const C = 'com_svc';
let db: TestDatabase;
let h: AccessHarness;
let service: AccessService;
let clock = at(0);

const community = { kind: ResourceKind.COMMUNITY };
const chat = { kind: ResourceKind.GROUP, id: 'grp_chat' };
const sub = {
  id: 'sub_svc',
  customer: 'cus_svc',
  status: 'active',
  price: 'price_gold_m',
  product: 'prod_gold',
  periodStart: at(0),
  periodEnd: at(30),
  memberId: 'mem_svc',
};

beforeAll(async () => {
  db = await createTestDatabase('accesssvc');
  const ledger = new PostgresLedger({
    connectionString: db.url,
    clock: () => new Date(clock),
    pollIntervalMs: 20,
    readSettleMs: 20,
  });
  h = await startAccessHarness({ databaseUrl: db.url, ledger, alsoProject: [archiveProjection()] });
  service = new AccessService({ ds: h.ds, access: h.access, memberships: h.memberships, now: () => at(1) });
  await h.append(catalogFacts(C));
  await h.append([
    stripeLedgerEvent(C, subscriptionEvent('customer.subscription.created', at(0), sub, 'evt_svc_created')),
    stripeLedgerEvent(
      C,
      invoiceEvent('invoice.payment_action_required', at(0), {
        id: 'in_svc_1',
        subscription: sub.id,
        customer: sub.customer,
      }),
    ),
    stripeLedgerEvent(
      C,
      checkoutEvent('checkout.session.completed', at(0), {
        id: 'cs_svc',
        mode: 'payment',
        memberId: 'mem_buyer',
        paymentIntent: 'pi_svc',
        priceId: 'pr_course',
      }),
    ),
  ]);
  clock = at(40);
  await h.append([
    stripeLedgerEvent(
      C,
      subscriptionEvent(
        'customer.subscription.deleted',
        at(20),
        { ...sub, status: 'canceled', endedAt: at(20) },
        'evt_svc_deleted',
      ),
    ),
  ]);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

describe('AccessService', () => {
  it('answers canAccess with the grants and their causing ledger events', async () => {
    const d = await service.canAccess(C, 'mem_svc', chat, new Date(at(10)));
    expect(d.allowed).toBe(true);
    expect(d.validUntil).toEqual(new Date(at(20)));
    expect(d.grants).toHaveLength(1);
    expect(d.grants[0]).toMatchObject({
      source: AccessSource.SUBSCRIPTION,
      resource: { kind: 'GROUP', id: 'grp_chat', name: 'Chat' },
    });
    const cause = await d.grants[0].causedBy;
    expect(cause).toMatchObject({
      id: 'evt_svc_deleted',
      type: 'customer.subscription.deleted',
      communityId: C,
      source: 'stripe',
    });
  });

  it('answers what was believed at asKnownAt before a late webhook', async () => {
    expect((await service.canAccess(C, 'mem_svc', community, new Date(at(25)))).allowed).toBe(false);
    expect(
      (await service.canAccess(C, 'mem_svc', community, new Date(at(25)), new Date(at(10)))).allowed,
    ).toBe(true);
  });

  it('rejects a group resource without an id', async () => {
    await expect(service.canAccess(C, 'mem_svc', { kind: ResourceKind.GROUP })).rejects.toThrow(
      BadUserInputError,
    );
  });

  it('maps the membership to the contract: status, tier, price and a pending payment action', async () => {
    const before = await service.membership(C, 'mem_svc', new Date(at(5)));
    expect(before).toMatchObject({
      status: MembershipStatus.ACTIVE,
      stripeSubscriptionId: 'sub_svc',
      paymentActionRequired: true,
    });
    expect(before.tier?.id).toBe('tier_gold');
    expect(before.tier?.groups.map((g) => g.id)).toEqual(['grp_chat']);
    expect(before.price).toMatchObject({
      id: 'pr_gold_m',
      stripePriceId: 'price_gold_m',
      productKind: 'TIER',
      productId: 'tier_gold',
    });
    expect((await service.membership(C, 'mem_svc')).status).toBe(MembershipStatus.CANCELED);
    expect((await service.membership(C, 'mem_nobody')).status).toBe(MembershipStatus.NONE);
  });

  it('pages the access history with opaque cursors, each change naming its cause', async () => {
    const first = await service.accessHistory(C, 'mem_svc', 1);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const rest = await service.accessHistory(C, 'mem_svc', 10, first.pageInfo.endCursor ?? undefined);
    const all = [...first.edges, ...rest.edges].map((e) => e.node);
    expect(all.map((n) => [n.resource.kind, n.change])).toEqual([
      ['COMMUNITY', AccessChangeKind.GRANTED],
      ['GROUP', AccessChangeKind.GRANTED],
      ['COMMUNITY', AccessChangeKind.REVOKED],
      ['GROUP', AccessChangeKind.REVOKED],
    ]);
    expect((await all[0].causedBy).id).toBe('evt_svc_created');
    expect(all[2].recordedAt).toEqual(new Date(at(40)));
    await expect(service.accessHistory(C, 'mem_svc', 10, 'not-a-cursor')).rejects.toThrow(BadUserInputError);
  });

  it('lists who may see a resource at an instant, with their membership and the total', async () => {
    const course = await service.accessList(
      C,
      { kind: ResourceKind.GROUP, id: 'grp_course' },
      new Date(at(5)),
    );
    expect(course.totalCount).toBe(1);
    expect(course.edges[0].node).toMatchObject({
      memberId: 'mem_buyer',
      source: AccessSource.ONE_TIME,
      validUntil: null,
    });
    expect(course.edges[0].node.membership.status).toBe(MembershipStatus.NONE);
    expect((await service.accessList(C, community, new Date(at(25)))).totalCount).toBe(0);
  });
});
