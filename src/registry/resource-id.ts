import { ConfigError } from "../errors.js";
import type { RegistryRef } from "./types.js";

const REGISTRY_ID =
  /^\/subscriptions\/([0-9a-fA-F-]{36})\/resourceGroups\/([-\w._()]{1,90})\/providers\/Microsoft\.ContainerRegistry\/registries\/([a-zA-Z0-9]{5,50})\/?$/i;

/**
 * Parses `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}`.
 * Registry names are 5-50 alphanumerics; ARM treats IDs case-insensitively, so `id` is
 * re-spelt canonically and comparisons use `sameRegistry`.
 */
export function parseRegistryId(text: string, settingName = "registry"): RegistryRef {
  const match = REGISTRY_ID.exec(text.trim());
  if (match === null) {
    // Real IDs are under 300 characters; a pasted blob must not become a page-long message.
    const shown = text.length > 300 ? `${text.slice(0, 300)}…` : text;
    throw new ConfigError(`${settingName} '${shown}' is not a container registry resource ID.`, {
      details: { setting: settingName, value: shown },
      remedy:
        "Use /subscriptions/<subscription-id>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name> (az acr show --query id).",
    });
  }
  const [, subscriptionId = "", resourceGroup = "", name = ""] = match;
  return {
    id: `/subscriptions/${subscriptionId.toLowerCase()}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${name}`,
    subscriptionId: subscriptionId.toLowerCase(),
    resourceGroup,
    name,
  };
}

export function sameRegistry(a: RegistryRef, b: RegistryRef): boolean {
  return a.id.toLowerCase() === b.id.toLowerCase();
}
