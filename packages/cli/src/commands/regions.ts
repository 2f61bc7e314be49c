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
  /**
   * The default region's stores, which hold what the deployment shares (its locks, the quarantine):
   * opened here, and closed with the rest, when the command works on another region only.
   */
  home(): Promise<Stores>;
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
  const layout = regionStores(config);
  const multiRegion = layout.length > 1;
  const regions: OpenRegion[] = [];
  let home: OpenRegion | undefined;
  const open = async (region: Region, regionConfig: Config): Promise<OpenRegion> => ({
    region,
    config: regionConfig,
    stores: await openStores(regionConfig, multiRegion ? log.child({ region }) : log, { reuseRunning: true }),
  });
  const close = async () => {
    const extra = home && !regions.includes(home) ? [home] : [];
    home = undefined;
    for (const r of [...regions.splice(0), ...extra].reverse()) await r.stores.close();
  };
  try {
    for (const { region, config: regionConfig } of regionsFor(config, communityId)) {
      regions.push(await open(region, regionConfig));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    regions,
    multiRegion,
    label: (region) => (multiRegion ? `${region}: ` : ''),
    async home() {
      home ??=
        regions.find((r) => r.region === layout[0].region) ??
        (await open(layout[0].region, layout[0].config));
      return home.stores;
    },
    close,
  };
}
