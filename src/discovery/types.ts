import type { DiscoveryScope } from "../config/settings.js";

/** One row of the discovery query, validated. */
export interface DiscoveredRegistry {
  readonly id: string;
  readonly name: string;
  readonly location: string;
  readonly sku: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface DiscoveryRequest {
  readonly tag: { readonly key: string; readonly value: string };
  readonly scopes: readonly DiscoveryScope[];
}

export interface DiscoveryResult {
  readonly registries: readonly DiscoveredRegistry[];
  /** Requests sent (pages included), 429s the SDK absorbed, waits for the quota window. */
  readonly stats: { readonly requests: number; readonly throttled: number; readonly quotaWaits: number };
}

/** The Resource Graph edge. */
export interface DiscoverySource {
  discover(request: DiscoveryRequest, options?: { signal?: AbortSignal }): Promise<DiscoveryResult>;
}

/**
 * Which registries the last discovery found, so one that loses its tag is reported once (and
 * then forgotten), not at every run. Blob next to the ledgers (functions) or a file (CLI).
 */
export interface DiscoveryMemory {
  read(): Promise<readonly string[] | undefined>;
  write(registryIds: readonly string[]): Promise<void>;
}
