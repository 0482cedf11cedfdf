import { formatPrefix, parsePrefix, type ParseMode } from "./ipv4.js";

/**
 * Canonical rule strings. Whether ACR stores `1.2.3.4` or `1.2.3.4/32` is not settled (both are
 * reported), so rules are always compared in this form, as sets, never by their text or order.
 */

/**
 * `canonicalRule("1.2.3.4") === "1.2.3.4/32"`. Strict by default: host bits set throw
 * `InvalidPrefixError`. IPv6 throws `IPv6PrefixError`.
 */
export function canonicalRule(text: string, mode: ParseMode = "strict"): string {
  return formatPrefix(parsePrefix(text, { mode }).prefix);
}

export interface CanonicalizedRule {
  readonly rule: string;
  /** The text had host bits set (`10.0.0.1/24` became `10.0.0.0/24`): worth a warning. */
  readonly hostBitsCleared: boolean;
}

/** For rules read from a registry: host bits are cleared and reported instead of rejected. */
export function canonicalizeRegistryRule(text: string): CanonicalizedRule {
  const parsed = parsePrefix(text.trim(), { mode: "lenient" });
  return { rule: formatPrefix(parsed.prefix), hostBitsCleared: parsed.hostBitsCleared };
}
