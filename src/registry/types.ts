/**
 * What the rest of the service knows about a registry. Only `src/registry/` imports the Azure SDK;
 * everything else sees these small types.
 */

/** An ARM resource ID split into its parts. `id` keeps the canonical spelling. */
export interface RegistryRef {
  readonly id: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
}

export type DefaultAction = "Allow" | "Deny";

export interface RegistrySnapshot {
  readonly ref: RegistryRef;
  /** ARM location, e.g. `japaneast`. */
  readonly location: string;
  /** SKU name: `Basic`, `Standard` or `Premium`. */
  readonly sku: string;
  readonly provisioningState: string;
  /** `Enabled` or `Disabled`; undefined when ARM leaves it out. */
  readonly publicNetworkAccess: string | undefined;
  /** `Allow` when the registry has no network rule set (ARM's meaning of an absent set). */
  readonly defaultAction: DefaultAction;
  /** The `value`s of the IP rules exactly as ARM returned them (`1.2.3.4` or `1.2.3.4/32`, any order). */
  readonly ipRules: readonly string[];
  /** The IP rule limit from `listUsages` (`IPRules`), or the documented default when absent. */
  readonly ruleLimit: number;
  readonly ruleLimitSource: "listUsages" | "default";
  readonly networkRuleBypassOptions: string | undefined;
  /** False or undefined: ACR Tasks using a system-assigned identity get 403 behind the firewall. */
  readonly networkRuleBypassAllowedForTasks: boolean | undefined;
  /**
   * Legacy service-endpoint virtual-network rules in use (`listUsages` entry `VNetRules`). The
   * 2025-11-01 model cannot see them, and a PATCH of `networkRuleSet` would drop them. Absent: 0.
   */
  readonly legacyVirtualNetworkRules?: number;
  /** Set when ARM refused the configured api-version and the older GA version was used instead. */
  readonly apiVersionFallback?: { readonly from: string; readonly to: string; readonly armCode: string };
  /** ARM locations of geo-replicas (the home location included when ARM lists it); empty unless asked for. */
  readonly replicaLocations: readonly string[];
  /**
   * ARM's clock: the `Date` header of the registry read (RFC 1123). The run clock of grant
   * expiry (`src/grants/clock.ts`); undefined when ARM sent none.
   */
  readonly armTime?: string | undefined;
}

export interface ReplaceIpRulesRequest {
  /** The complete new list (PATCH replaces the whole list). */
  readonly ipRules: readonly string[];
  /** Sent unchanged: the service never changes `defaultAction`. */
  readonly defaultAction: DefaultAction;
}

export interface RegistryReadOptions {
  readonly signal?: AbortSignal | undefined;
  readonly includeReplicas?: boolean | undefined;
  /**
   * A full snapshot of the same registry taken moments ago in the same run: its rule limit,
   * legacy VNet-rule count and replica locations are kept, and only the registry document is read
   * (one GET instead of GET + listUsages [+ the replicas list]). For the re-reads around a write,
   * which compare rules: a thousand registries spend a third fewer ARM reads.
   */
  readonly limitsFrom?: RegistrySnapshot | undefined;
}

/** The edge that talks to ARM. Implementations map SDK failures to the named errors in `src/errors.ts`. */
export interface RegistryGateway {
  /** Geo-replica locations are read only with `includeReplicas` (it needs `replications/read`). */
  read(ref: RegistryRef, options?: RegistryReadOptions): Promise<RegistrySnapshot>;
  /** Sends one PATCH of `networkRuleSet` and waits for the long-running operation to finish. */
  replaceIpRules(ref: RegistryRef, request: ReplaceIpRulesRequest, options?: { signal?: AbortSignal }): Promise<void>;
}
