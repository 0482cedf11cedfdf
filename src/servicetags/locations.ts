/**
 * ARM location names (`eastus`, `chinanorth3`, `usgovvirginia`) of the public, China and US
 * Government clouds. They tell a typo (`eastuss`: a configuration error, "did you mean eastus")
 * from a region Microsoft stopped publishing an ACR tag for (the `tag-missing` guard, which keeps
 * the current rules), so the list only needs to know names, never prefixes; a region newer than
 * the list is still accepted while the file has its tag, or once a ledger has synced it.
 *
 * Source: the `AzureContainerRegistry.<Region>` and `AzureCloud.<Region>` tag names of Microsoft's
 * service-tags files: the full Public file of 2023-01-02 and the full China file of 2026-07-20 (both
 * in test/fixtures/servicetags) and the weekly ACR subsets of 2021-01-04 to 2025-10-20 (regions
 * added since 2023). No Government file is among the fixtures: the US Government names are the six
 * regions of Azure Government (US Gov Virginia, Iowa, Arizona, Texas; US DoD Central, East).
 * Some tag names are short forms of a location (`brazilse`, `germanywc`): kept, as Microsoft
 * publishes them.
 */
const PUBLIC = [
  "australiacentral",
  "australiacentral2",
  "australiaeast",
  "australiasoutheast",
  "austriaeast",
  "belgiumcentral",
  "brazilne",
  "brazilse",
  "brazilsouth",
  "brazilsoutheast",
  "canadacentral",
  "canadaeast",
  "centralfrance",
  "centralindia",
  "centralus",
  "centraluseuap",
  "chilec",
  "chilecentral",
  "eastasia",
  "easteurope",
  "eastus",
  "eastus2",
  "eastus2euap",
  "eastusslv",
  "eastusstg",
  "finlandcentral",
  "francecentral",
  "francesouth",
  "germanyn",
  "germanynorth",
  "germanywc",
  "germanywestcentral",
  "indiasouthcentral",
  "indonesiacentral",
  "israelcentral",
  "israelnorthwest",
  "isrealcentral",
  "italynorth",
  "japaneast",
  "japanwest",
  "jioindiacentral",
  "jioindiawest",
  "koreacentral",
  "koreasouth",
  "malaysiasouth",
  "malaysiawest",
  "mexicocentral",
  "newzealandnorth",
  "northcentralus",
  "northeurope",
  "northeurope2",
  "norwaye",
  "norwayeast",
  "norwayw",
  "norwaywest",
  "polandcentral",
  "qatarcentral",
  "southafricanorth",
  "southafricawest",
  "southcentralus",
  "southcentralus2",
  "southcentralusstg",
  "southeastasia",
  "southeastus",
  "southeastus3",
  "southfrance",
  "southindia",
  "spaincentral",
  "swedencentral",
  "swedensouth",
  "switzerlandn",
  "switzerlandnorth",
  "switzerlandw",
  "switzerlandwest",
  "taiwannorth",
  "taiwannorthwest",
  "uaecentral",
  "uaenorth",
  "uknorth",
  "uksouth",
  "uksouth2",
  "ukwest",
  "usstagec",
  "usstagee",
  "westcentralus",
  "westeurope",
  "westindia",
  "westus",
  "westus2",
  "westus3",
];

const CHINA = ["chinaeast", "chinaeast2", "chinaeast3", "chinanorth", "chinanorth2", "chinanorth3"];

const US_GOVERNMENT = ["usdodcentral", "usdodeast", "usgovarizona", "usgoviowa", "usgovtexas", "usgovvirginia"];

export const KNOWN_LOCATIONS: ReadonlySet<string> = new Set([...PUBLIC, ...CHINA, ...US_GOVERNMENT]);

/** Whether `name` (any letter case, spaces ignored: `East US`) is a known ARM location. */
export function isKnownLocation(name: string): boolean {
  return KNOWN_LOCATIONS.has(name.replace(/\s+/g, "").toLowerCase());
}
