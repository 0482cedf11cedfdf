/**
 * The storage key of a registry: ARM resource IDs are case-insensitive, so the key is the lower-cased
 * ID, its segments percent-encoded so any resource-group name yields a safe, unique blob path
 * (`subscriptions/<sub>/resourcegroups/<rg>/providers/microsoft.containerregistry/registries/<name>`).
 */
export function registryKey(registryId: string): string {
  const segments = registryId
    .trim()
    .toLowerCase()
    .split("/")
    .filter((segment) => segment.length > 0);
  if (segments.length === 0) throw new RangeError("A registry id must not be empty.");
  // "." and ".." would be collapsed by URL parsing; encode their dots too.
  return segments
    .map((segment) => (/^\.+$/.test(segment) ? segment.replace(/\./g, "%2E") : encodeURIComponent(segment)))
    .join("/");
}

/** Registry IDs compare case-insensitively, as ARM does. */
export function sameRegistry(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}
