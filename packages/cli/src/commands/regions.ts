import type { Logger } from 'pino';
import {
  openStores,
  regionOfCommunity,
  regionStores,
  type Config,
  type Region,
  type Stores,
} from '@gatehouse/api';

// With GATEHOUSE_REGIONS each region keeps its own ledger and database. A command about one
// community works on the stores of that community's region (its id starts with the region); a
// command about everything goes through every region in turn, the default region first.

export type OpenRegion = { region: Region; config: Config; stores: Stores };

export type RegionSet = {
  regions: OpenRegion[];
  /** More than one region is configured: output names the region each line is about. */
  multiRegion: boolean;
  /** `in: ` before a line about one region of several; nothing with a single region. */
  label(region: Region): string;
  close(): Promise<void>;
};

/** The regions a command works on: the one holding `communityId`, or every one. */
export function regionsFor(config: Config, communityId?: string): { region: Region; config: Config }[] {
  const layout = regionStores(config);
  if (communityId === undefined) return layout;
  return [regionOfCommunity(layout, layout[0], communityId)];
}

/** Opens (migrated, ledger initialised) the stores of the regions `regionsFor` names. */
export async function openRegions(config: Config, log: Logger, communityId?: string): Promise<RegionSet> {
  const multiRegion = regionStores(config).length > 1;
  const regions: OpenRegion[] = [];
  const close = async () => {
    for (const r of regions.splice(0).reverse()) await r.stores.close();
  };
  try {
    for (const { region, config: regionConfig } of regionsFor(config, communityId)) {
      const stores = await openStores(regionConfig, multiRegion ? log.child({ region }) : log, {
        reuseRunning: true,
      });
      regions.push({ region, config: regionConfig, stores });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { regions, multiRegion, label: (region) => (multiRegion ? `${region}: ` : ''), close };
}
