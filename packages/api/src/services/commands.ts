import type { Ledger, NewEvent, AppendResult } from '@gatehouse/ledger';
import type { Projector } from '@gatehouse/projections';
import { GatehouseError } from '../graphql/errors';

export type Fact = { type: string; data: unknown };

export type CommandContext = {
  ledger: Ledger;
  projector: Projector;
  clock: () => Date;
  /** How long a mutation waits for the projector to apply its facts (read your writes). */
  waitMs: number;
};

/**
 * Appends admin facts for one community and waits (bounded) until every projection has applied them,
 * so the mutation can answer from the read models.
 */
export async function appendAndWait(
  ctx: CommandContext,
  communityId: string,
  actor: string,
  facts: readonly Fact[],
  options: { source?: NewEvent['source']; subject?: string | null; correlationId?: string } = {},
): Promise<AppendResult[]> {
  if (facts.length === 0) return [];
  const now = ctx.clock().toISOString();
  const results = await ctx.ledger.append(
    facts.map((f) => ({
      type: f.type,
      communityId,
      subject: options.subject ?? null,
      occurredAt: now,
      source: options.source ?? 'admin',
      actor,
      correlationId: options.correlationId ?? null,
      data: f.data,
    })),
  );
  const applied = await ctx.projector.waitForAppended(communityId, results, ctx.waitMs);
  if (!applied) {
    throw new GatehouseError(
      'CONFLICT',
      'The change was recorded but is not visible yet; query again in a moment',
    );
  }
  return results;
}
