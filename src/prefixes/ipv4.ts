import IPCIDR from "ip-cidr";
import { InvalidPrefixError, IPv6PrefixError } from "../errors.js";

/**
 * An IPv4 prefix as plain integers: `base` is the network address as an unsigned 32-bit value
 * (0 … 2^32 − 1, a regular JS number, never an int32), `length` is 0 … 32. A canonical prefix has
 * no host bits set (`base` is a multiple of its size). Sizes reach 2^32, so address counts are
 * kept in plain numbers (exact up to 2^53), never in int32 operations.
 */
export interface Prefix {
  readonly base: number;
  readonly length: number;
}

/**
 * `strict`: host bits set is an error (service-tag input, prefix files: a typo there must stop
 * the run, not widen the allowlist). `lenient`: host bits are cleared and reported (rules read
 * from a registry, which people typed by hand and ARM accepted).
 */
export type ParseMode = "strict" | "lenient";

export interface ParsePrefixOptions {
  readonly mode: ParseMode;
}

export interface ParsedPrefix {
  readonly prefix: Prefix;
  /** True when the text had host bits set and `mode` was `lenient`. */
  readonly hostBitsCleared: boolean;
}

export const IPV4_BITS = 32;
export const IPV4_SPACE = 2 ** 32;

/**
 * `SIZE_OF_LENGTH[n]` = 2^(32 − n) for n = 0 … 32: a table read instead of a power in the loops
 * over a million prefixes (a one-shot CLI runs them once, much of it before the optimiser has
 * compiled them, where `2 **` is a call).
 */
export const SIZE_OF_LENGTH: Float64Array = Float64Array.from(
  { length: IPV4_BITS + 1 },
  (_, n) => 2 ** (IPV4_BITS - n),
);

/** 2^(32 − length): the number of addresses in a prefix of that length (1 … 2^32). */
export function sizeOfLength(length: number): number {
  return 2 ** (IPV4_BITS - length);
}

export function prefixSize(prefix: Prefix): number {
  return sizeOfLength(prefix.length);
}

/** The last address of the prefix (inclusive). */
export function prefixEnd(prefix: Prefix): number {
  return prefix.base + sizeOfLength(prefix.length) - 1;
}

/** Clears the host bits of `address` for a prefix of `length`. */
export function networkOf(address: number, length: number): number {
  if (length === 0) return 0;
  return (address & (-1 << (IPV4_BITS - length))) >>> 0;
}

/** Sorted by base, then shorter (larger) prefixes first: the order of a pre-order walk of the trie. */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  return a.base - b.base || a.length - b.length;
}

/** True when `outer` contains every address of `inner`. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.length <= inner.length && networkOf(inner.base, outer.length) === outer.base;
}

export function formatAddress(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
}

/** Always `a.b.c.d/n`, also for /32: the one canonical rule form we write and compare. */
export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress(prefix.base)}/${prefix.length}`;
}

/**
 * True when `text` is an IPv6 address or prefix. ACR rules are IPv4 only: callers skip these and
 * count them. Validation goes through `ip-cidr` (ip-address) so that garbage containing a colon is
 * reported as invalid rather than silently skipped as "IPv6".
 */
export function isIPv6Text(text: string): boolean {
  return text.includes(":") && IPCIDR.isValidAddress(text);
}

const MAX_INPUT_IN_MESSAGE = 64;

function shown(text: string): string {
  return text.length > MAX_INPUT_IN_MESSAGE ? `${text.slice(0, MAX_INPUT_IN_MESSAGE)}…` : text;
}

function invalid(text: string, why: string, reason: string): InvalidPrefixError {
  return new InvalidPrefixError(`'${shown(text)}' is not a valid IPv4 prefix: ${why}.`, {
    details: { input: shown(text), reason },
    remedy: "Write IPv4 prefixes as a.b.c.d or a.b.c.d/n (n from 0 to 32, decimal octets without leading zeros).",
  });
}

/** The error for text that does not start with an IPv4 address: IPv6 is told apart, so callers can skip it. */
function notFourOctets(text: string): InvalidPrefixError | IPv6PrefixError {
  if (isIPv6Text(text)) {
    return new IPv6PrefixError(`'${shown(text)}' is an IPv6 prefix; registry IP rules are IPv4 only.`, {
      details: { input: shown(text) },
      remedy: "Skip IPv6 prefixes: Azure Container Registry IP rules accept IPv4 only.",
    });
  }
  return invalid(text, "expected four decimal octets", "syntax");
}

// Char codes used by the hand-written parser (the hot path of merging a million prefixes).
const DOT = 46;
const SLASH = 47;
const ZERO = 48;
const NINE = 57;

/**
 * Parses `a.b.c.d` or `a.b.c.d/n` into a prefix; `a.b.c.d` means `/32`. Octets and the length are
 * decimal without leading zeros (`010.0.0.1` is octal to some tools and decimal to others, so it is
 * refused rather than guessed). No surrounding whitespace: callers trim lines they read.
 * Throws `IPv6PrefixError` for IPv6 text and `InvalidPrefixError` for anything else that is wrong.
 */
export function parsePrefix(text: string, options: ParsePrefixOptions): ParsedPrefix {
  const end = text.length;
  let address = 0;
  let position = 0;
  for (let octet = 0; octet < 4; octet += 1) {
    const start = position;
    let value = 0;
    while (position < end) {
      const code = text.charCodeAt(position);
      if (code < ZERO || code > NINE) break;
      value = value * 10 + (code - ZERO);
      position += 1;
    }
    const digits = position - start;
    if (digits === 0 || digits > 3) throw notFourOctets(text);
    // IPv6 text can start with 1-3 decimal digits too (`2a01:111::/48`, `100::/64`): checked below.
    if (octet === 0 && position < end && text.charCodeAt(position) !== DOT) throw notFourOctets(text);
    if (digits > 1 && text.charCodeAt(start) === ZERO)
      throw invalid(text, "octets must not have leading zeros", "syntax");
    if (value > 255) throw invalid(text, `octet ${value} is greater than 255`, "syntax");
    address = address * 256 + value;
    if (octet < 3) {
      if (position >= end || text.charCodeAt(position) !== DOT)
        throw invalid(text, "expected four decimal octets", "syntax");
      position += 1;
    }
  }
  let length = IPV4_BITS;
  if (position < end) {
    if (text.charCodeAt(position) !== SLASH) throw invalid(text, "unexpected text after the address", "syntax");
    position += 1;
    const start = position;
    length = 0;
    while (position < end) {
      const code = text.charCodeAt(position);
      if (code < ZERO || code > NINE) throw invalid(text, "the prefix length must be a decimal number", "syntax");
      length = length * 10 + (code - ZERO);
      position += 1;
    }
    const digits = position - start;
    if (digits === 0 || digits > 2 || (digits > 1 && text.charCodeAt(start) === ZERO)) {
      throw invalid(text, "the prefix length must be a decimal number from 0 to 32", "length");
    }
    if (length > IPV4_BITS) throw invalid(text, `prefix length ${length} is greater than 32`, "length");
  }
  const base = networkOf(address, length);
  if (base === address) return { prefix: { base, length }, hostBitsCleared: false };
  if (options.mode === "strict") {
    throw new InvalidPrefixError(
      `'${shown(text)}' has host bits set: the network of that length is ${formatAddress(base)}/${length}.`,
      {
        details: { input: shown(text), reason: "host-bits", network: `${formatAddress(base)}/${length}` },
        remedy:
          "Fix the source: a prefix with host bits set is usually a typo, and guessing which part is wrong could widen the allowlist.",
      },
    );
  }
  return { prefix: { base, length }, hostBitsCleared: true };
}
