import type { DataSource } from 'typeorm';

/** What an import needs to know from the read models. Every lookup is scoped by community. */
export class MigrationQuery {
  constructor(private readonly ds: DataSource) {}

  /**
   * Members already tied to these Stripe customers or emails (learned from webhooks, Checkout,
   * members who joined with an email, earlier imports). Emails are matched lower-case.
   */
  async directory(
    communityId: string,
    customerIds: readonly string[],
    emails: readonly string[],
  ): Promise<{ byCustomer: Map<string, string>; byEmail: Map<string, string> }> {
    const keys = [...customerIds, ...emails.map((e) => `email:${e.toLowerCase()}`)];
    const rows =
      keys.length === 0
        ? []
        : await this.ds.query<{ stripe_key: string; member_id: string }[]>(
            'SELECT stripe_key, member_id FROM stripe_links WHERE community_id = $1 AND stripe_key = ANY($2::text[])',
            [communityId, keys],
          );
    const byCustomer = new Map<string, string>();
    const byEmail = new Map<string, string>();
    for (const r of rows) {
      if (r.stripe_key.startsWith('email:')) byEmail.set(r.stripe_key.slice('email:'.length), r.member_id);
      else byCustomer.set(r.stripe_key, r.member_id);
    }
    return { byCustomer, byEmail };
  }

  /** Which of these ledger event ids the archive already holds for the community. */
  async knownEventIds(communityId: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.ds.query<{ id: string }[]>(
      'SELECT id FROM ledger_events WHERE community_id = $1 AND id = ANY($2::text[])',
      [communityId, ids],
    );
    return new Set(rows.map((r) => r.id));
  }
}
