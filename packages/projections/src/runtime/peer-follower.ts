import type { DataSource } from 'typeorm';
import type { AccessIndex } from '../access/access-index';
import type { Projector } from './projector';
import type { LeaseHandlers } from './projector-lease';

/**
 * What a server that follows the projecting one does with its messages: re-reads the members and
 * catalogs they name into its access index (all of it after a rebuild or a break in the connection),
 * then records the positions passed (after a break, the checkpoints read before the reload), so that
 * a waiter it releases finds the index updated.
 */
export function peerFollower(deps: {
  dataSource: DataSource;
  index: AccessIndex;
  projector: Projector;
}): Pick<LeaseHandlers, 'message' | 'resync'> {
  const { dataSource, index, projector } = deps;
  return {
    async message(m) {
      if (m.t === 'access') await index.refresh(dataSource, m);
      else if (m.t === 'reload') await index.load(dataSource);
      else projector.observe(m);
    },
    // Changes told while the connection was down are in the tables.
    resync: () => projector.resync(() => index.load(dataSource)),
  };
}
