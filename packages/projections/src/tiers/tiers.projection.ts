import type {
  MemberPriceMigrationScheduled,
  PriceMigrationCompleted,
  TierChangeRequested,
} from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import { translateInvoice, type StripeInvoiceView } from '@gatehouse/stripe';
import pino, { type Logger } from 'pino';
import { readStripeEvent } from '../membership/stripe-event.translate';
import type { Projection, ProjectionTx } from '../runtime/projection';

const INVOICE_TYPES = ['invoice.paid', 'invoice.finalized'];
const LINK_TYPES = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'checkout.session.completed',
];
export const TIERS_FACT_TYPES: readonly string[] = [
  ...INVOICE_TYPES,
  ...LINK_TYPES,
  'TierChangeRequested',
  'MemberPriceMigrationScheduled',
  'PriceMigrationCompleted',
];

/** What an invoice's proration says happened. */
export type ProrationFigures = {
  credit: number;
  charge: number;
  net: number;
  currency: string;
  /** The proration date: where the proration lines start. */
  effectiveAt: number;
  fromStripePriceId: string | null;
  toStripePriceId: string | null;
};

/**
 * The proration an invoice carries, or null when it has none. An invoice made by the change itself
 * (`subscription_update`, from `always_invoice`) is counted whole, so that a change of interval, which
 * charges the full new price as an ordinary line, compares with its preview; elsewhere (proration
 * items folded into a renewal) only the proration lines count.
 */
export function prorationOf(inv: StripeInvoiceView): ProrationFigures | null {
  const prorations = inv.lines.filter((l) => l.proration);
  if (prorations.length === 0) return null;
  const counted = inv.billingReason === 'subscription_update' ? inv.lines : prorations;
  const credit = counted.filter((l) => l.amount < 0).reduce((s, l) => s + l.amount, 0);
  const charge = counted.filter((l) => l.amount > 0).reduce((s, l) => s + l.amount, 0);
  const starts = prorations.map((l) => l.periodStart).filter((t): t is number => t !== null);
  return {
    credit,
    charge,
    net: credit + charge,
    currency: inv.currency,
    effectiveAt: starts.length > 0 ? Math.min(...starts) : 0,
    fromStripePriceId: counted.find((l) => l.amount < 0)?.priceId ?? null,
    toStripePriceId: counted.find((l) => l.amount > 0)?.priceId ?? null,
  };
}

type RequestRow = { event_id: string; data: TierChangeRequested['data'] };

const iso = (ms: number) => new Date(ms).toISOString();
const envelope = (e: RecordedEvent) => {
  const { data: _data, ...rest } = e;
  return rest;
};

/**
 * Stripe keys (subscription, customer) → member learned during one batch, written with one statement
 * at its end. As with `ON CONFLICT DO NOTHING` row by row, the first link of a key wins.
 */
class PendingLinks {
  private readonly byKey = new Map<string, { communityId: string; key: string; memberId: string }>();

  add(communityId: string, keys: (string | undefined)[], memberId: string): void {
    for (const key of keys) {
      if (key === undefined) continue;
      const id = `${communityId}\u0000${key}`;
      if (!this.byKey.has(id)) this.byKey.set(id, { communityId, key, memberId });
    }
  }

  get(communityId: string, key: string): string | undefined {
    return this.byKey.get(`${communityId}\u0000${key}`)?.memberId;
  }

  async flush(tx: ProjectionTx): Promise<void> {
    if (this.byKey.size === 0) return;
    const rows = [...this.byKey.values()];
    await tx.query(
      `INSERT INTO tier_links (community_id, stripe_key, member_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
      [rows.map((r) => r.communityId), rows.map((r) => r.key), rows.map((r) => r.memberId)],
    );
  }
}

/**
 * Tier changes: requests (with their previews), proration outcomes recorded from the real invoice
 * lines, and price-migration progress per member. Events are handled one by one in log order, so the
 * rows do not depend on where batches were cut; the first invoice event that shows an invoice's
 * proration (finalized or paid) records it.
 */
export class TiersProjection implements Projection {
  readonly name = 'tiers';
  readonly types = TIERS_FACT_TYPES;
  readonly tables = [
    'tier_links',
    'tier_change_requests',
    'proration_outcomes',
    'price_migration_members',
    'price_migrations',
  ];
  private readonly log: Logger;

  constructor(options: { logger?: Logger } = {}) {
    this.log = options.logger ?? pino({ name: 'tiers-projection' });
  }

  async apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
    const links = new PendingLinks();
    for (const e of events) {
      if (e.source === 'stripe') await this.stripe(tx, links, e);
      else if (e.type === 'TierChangeRequested')
        await this.request(tx, links, e, e.data as TierChangeRequested['data']);
      else if (e.type === 'MemberPriceMigrationScheduled')
        await this.migrationStep(tx, links, e, e.data as MemberPriceMigrationScheduled['data']);
      else if (e.type === 'PriceMigrationCompleted')
        await this.migrationCompleted(tx, e.data as PriceMigrationCompleted['data']);
    }
    await links.flush(tx);
  }

  /** The member a stored link names, else one this batch learned (a stored link is never replaced). */
  private async memberFor(
    tx: ProjectionTx,
    links: PendingLinks,
    communityId: string,
    keys: (string | null | undefined)[],
  ): Promise<string | null> {
    for (const k of keys) {
      if (!k) continue;
      const rows = await tx.query<{ member_id: string }>(
        'SELECT member_id FROM tier_links WHERE community_id = $1 AND stripe_key = $2',
        [communityId, k],
      );
      if (rows[0]) return rows[0].member_id;
      const pending = links.get(communityId, k);
      if (pending) return pending;
    }
    return null;
  }

  private async stripe(tx: ProjectionTx, links: PendingLinks, e: RecordedEvent): Promise<void> {
    const c = e.communityId;
    const { hints } = readStripeEvent(e.data);
    if (hints.memberId) links.add(c, [hints.subscriptionId, hints.customerId], hints.memberId);
    if (!INVOICE_TYPES.includes(e.type)) return;
    let inv: StripeInvoiceView;
    try {
      inv = translateInvoice((e.data as { data?: { object?: unknown } }).data?.object);
    } catch (err) {
      this.log.warn({ eventId: e.id, err }, 'invoice event without an invoice skipped');
      return;
    }
    const figures = prorationOf(inv);
    if (!figures) return;
    const memberId =
      hints.memberId ?? (await this.memberFor(tx, links, c, [inv.subscriptionId, inv.customerId]));
    const request = inv.subscriptionId
      ? await this.requestFor(tx, c, inv.subscriptionId, figures.effectiveAt)
      : null;
    const matched = request ? matches(request.data, figures) : null;
    const inserted = await tx.query<{ invoice_id: string }>(
      `INSERT INTO proration_outcomes (community_id, invoice_id, member_id, customer_id, subscription_id, from_stripe_price_id,
         to_stripe_price_id, credit, charge, net, currency, effective_at, preview_matched, request_event_id, caused_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT DO NOTHING RETURNING invoice_id`,
      [
        c,
        inv.id,
        memberId ?? request?.data.memberId ?? null,
        inv.customerId,
        inv.subscriptionId,
        figures.fromStripePriceId,
        figures.toStripePriceId,
        figures.credit,
        figures.charge,
        figures.net,
        figures.currency,
        iso(figures.effectiveAt),
        matched,
        request?.event_id ?? null,
        JSON.stringify(envelope(e)),
      ],
    );
    if (inserted.length > 0 && matched === false)
      this.reportMismatch(e, inv.id, request as RequestRow, figures);
  }

  private async requestFor(
    tx: ProjectionTx,
    c: string,
    subscriptionId: string,
    prorationDate: number,
  ): Promise<RequestRow | null> {
    // The latest request for that subscription and proration date (to the second, as Stripe counts).
    const rows = await tx.query<RequestRow>(
      `SELECT event_id, data FROM tier_change_requests
        WHERE community_id = $1 AND subscription_id = $2 AND timing = 'IMMEDIATE' AND proration_date = $3
        ORDER BY recorded_at DESC, event_id DESC LIMIT 1`,
      [c, subscriptionId, iso(prorationDate)],
    );
    return rows[0] ?? null;
  }

  private reportMismatch(
    e: RecordedEvent,
    invoiceId: string,
    request: RequestRow,
    figures: ProrationFigures,
  ): void {
    const p = request.data.preview;
    this.log.warn(
      {
        eventId: e.id,
        invoiceId,
        requestEventId: request.event_id,
        preview: { credit: p.credit, charge: p.charge, net: p.net },
        invoiced: figures,
      },
      'proration preview does not match the invoice',
    );
  }

  private async request(
    tx: ProjectionTx,
    links: PendingLinks,
    e: RecordedEvent,
    d: TierChangeRequested['data'],
  ): Promise<void> {
    const c = e.communityId;
    links.add(c, [d.subscriptionId], d.memberId);
    await tx.query(
      `INSERT INTO tier_change_requests (community_id, event_id, member_id, subscription_id, timing, proration_date, data, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [
        c,
        e.id,
        d.memberId,
        d.subscriptionId,
        d.timing,
        iso(d.prorationDate),
        JSON.stringify(d),
        e.recordedAt,
      ],
    );
    if (d.timing !== 'IMMEDIATE') return;
    // An invoice recorded before its request (Stripe was quicker than our append) is matched now.
    const waiting = await tx.query<{
      invoice_id: string;
      credit: number;
      charge: number;
      net: number;
      currency: string;
    }>(
      `SELECT invoice_id, credit, charge, net, currency FROM proration_outcomes
        WHERE community_id = $1 AND subscription_id = $2 AND effective_at = $3 AND request_event_id IS NULL`,
      [c, d.subscriptionId, iso(d.prorationDate)],
    );
    for (const w of waiting) {
      const matched = matches(d, w);
      await tx.query(
        `UPDATE proration_outcomes SET preview_matched = $3, request_event_id = $4, member_id = COALESCE(member_id, $5)
          WHERE community_id = $1 AND invoice_id = $2`,
        [c, w.invoice_id, matched, e.id, d.memberId],
      );
    }
  }

  private async migrationStep(
    tx: ProjectionTx,
    links: PendingLinks,
    e: RecordedEvent,
    d: MemberPriceMigrationScheduled['data'],
  ): Promise<void> {
    links.add(e.communityId, [d.subscriptionId], d.memberId);
    await tx.query(
      `INSERT INTO price_migration_members (community_id, migration_id, subscription_id, member_id, kind, timing,
         from_stripe_price_id, to_price_id, to_stripe_price_id, effective_at, event_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
      [
        e.communityId,
        d.migrationId,
        d.subscriptionId,
        d.memberId,
        d.kind,
        d.timing,
        d.fromStripePriceId,
        d.toPriceId,
        d.toStripePriceId,
        iso(d.effectiveAt),
        e.id,
      ],
    );
    await tx.query(
      `INSERT INTO price_migrations (community_id, migration_id, kind, scheduled) VALUES ($1, $2, $3, 1)
       ON CONFLICT (community_id, migration_id) DO UPDATE SET scheduled = (
         SELECT count(*)::int FROM price_migration_members m WHERE m.community_id = $1 AND m.migration_id = $2)`,
      [e.communityId, d.migrationId, d.kind],
    );
  }

  private async migrationCompleted(tx: ProjectionTx, d: PriceMigrationCompleted['data']): Promise<void> {
    await tx.query(
      `INSERT INTO price_migrations (community_id, migration_id, kind, scheduled, skipped, completed_at)
       VALUES ($1, $2, $3, 0, $4, $5)
       ON CONFLICT (community_id, migration_id) DO UPDATE SET skipped = EXCLUDED.skipped, completed_at = EXCLUDED.completed_at`,
      [d.communityId, d.migrationId, d.kind, d.skipped, iso(d.at)],
    );
  }
}

function matches(
  request: TierChangeRequested['data'],
  figures: Pick<ProrationFigures, 'credit' | 'charge' | 'net' | 'currency'>,
): boolean {
  const p = request.preview;
  return (
    p.credit === figures.credit &&
    p.charge === figures.charge &&
    p.net === figures.net &&
    p.currency === figures.currency
  );
}
