/**
 * The registries the history is replayed against. Chosen from the data (2021-01 … 2025-10):
 *
 * - koreasouth: 1 → 5 IPv4 prefixes, 5 changes, the one prefix removal of a regional tag in five years.
 * - eastus: 10 → 13 prefixes, a large region that never needs aggregation.
 * - the Americas (8 US regions, Canada, Brazil; all present every week): 81 → 119 merged prefixes,
 *   more than the budget of 93 rules (limit 100, headroom 5, 2 people's rules) in 187 of 242 weeks.
 *   At /20 the prefixes touch at most 73 blocks (at /22 up to 100), so SYNC_MIN_PREFIX_LENGTH=20 is
 *   always feasible. West US 3 is left out: its tag only appears in April 2021.
 * - westeurope behind 90 people's rules: limit 100, headroom 2, budget 8 for 9 → 11 prefixes,
 *   so every week needs aggregation, within /16 (at most 6 blocks).
 * - polandcentral: first published 2022-01-17, gone 2023-01-30 … 2023-02-27 with nine other
 *   regional tags, back 2023-03-06. Its missing weeks must trip the tag-missing guard and leave the
 *   registry alone; the other configurations have their tags every week.
 *
 * People's rules are outside every AzureContainerRegistry range (documentation and benchmark
 * ranges), so the first run, which adopts rules inside ACR ranges when no ledger exists, never
 * takes one of them.
 */
export interface ReplayConfiguration {
  /** Short name used in the figures. */
  readonly name: string;
  readonly description: string;
  /** Registry location; the selected region when `regions` is not set. */
  readonly location: string;
  /** SYNC_REGIONS. */
  readonly regions?: readonly string[];
  readonly peopleRules: readonly string[];
  readonly ruleLimit: number;
  /** Extra app settings (SYNC_HEADROOM, SYNC_MIN_PREFIX_LENGTH, ...). */
  readonly settings: Readonly<Record<string, string>>;
  /** What the data makes this configuration go through (checked, so a replay that skips it fails). */
  readonly expected: {
    /** Weeks in which a selected tag is missing from the file. */
    readonly tagMissingWeeks: number;
    /** Weeks that need aggregation: more merged published prefixes than the budget leaves rules for. */
    readonly aggregatedWeeks: number;
  };
}

export const AMERICAS = [
  "eastus",
  "eastus2",
  "centralus",
  "southcentralus",
  "northcentralus",
  "westcentralus",
  "westus",
  "westus2",
  "canadacentral",
  "canadaeast",
  "brazilsouth",
  "brazilsoutheast",
] as const;

/** 90 hand-made rules: 60 /24s in 198.18.0.0/15 (benchmarking), 29 single addresses, one with host bits set. */
export function crowdedPeopleRules(): string[] {
  const networks = Array.from({ length: 60 }, (_, i) => `198.18.${i * 4}.0/24`);
  const hosts = Array.from({ length: 29 }, (_, i) => (i % 2 === 0 ? `203.0.113.${i + 1}` : `203.0.113.${i + 1}/32`));
  return [...networks, ...hosts, "198.51.100.77/24"];
}

export const CONFIGURATIONS: readonly ReplayConfiguration[] = [
  {
    name: "small",
    expected: { tagMissingWeeks: 0, aggregatedWeeks: 0 },
    description: "one small region (koreasouth, 1-5 prefixes)",
    location: "koreasouth",
    peopleRules: ["203.0.113.10", "198.51.100.0/24"],
    ruleLimit: 100,
    settings: {},
  },
  {
    name: "large",
    expected: { tagMissingWeeks: 0, aggregatedWeeks: 0 },
    description: "one large region (eastus, 10-13 prefixes)",
    location: "eastus",
    peopleRules: ["203.0.113.10/32", "192.0.2.64/26", "198.51.100.7"],
    ruleLimit: 100,
    settings: {},
  },
  {
    name: "aggregated",
    expected: { tagMissingWeeks: 0, aggregatedWeeks: 187 },
    description: "12 regions of the Americas (81-119 merged prefixes, budget 95, /20 floor)",
    location: "eastus",
    regions: AMERICAS,
    peopleRules: ["203.0.113.0/24", "198.51.100.77/24"],
    ruleLimit: 100,
    settings: { SYNC_MIN_PREFIX_LENGTH: "20" },
  },
  {
    name: "crowded",
    expected: { tagMissingWeeks: 0, aggregatedWeeks: 242 },
    description: "westeurope behind 90 people's rules (limit 100, headroom 2, budget 8)",
    location: "westeurope",
    peopleRules: crowdedPeopleRules(),
    ruleLimit: 100,
    settings: { SYNC_HEADROOM: "2" },
  },
  {
    name: "vanishing",
    expected: { tagMissingWeeks: 58, aggregatedWeeks: 0 },
    description: "polandcentral (tag absent before 2022-01-17 and 2023-01-30 .. 2023-02-27)",
    location: "polandcentral",
    peopleRules: ["192.0.2.10"],
    ruleLimit: 100,
    settings: {},
  },
];
