import type { PrefixArrays } from "./merge.js";

/**
 * Prefix lists as text, written byte by byte into one buffer: for a list of 200,000 prefixes
 * this is several times faster than a string per prefix joined or passed to `JSON.stringify`.
 * The output is identical to `JSON.stringify` of the `formatPrefix` strings.
 */

// The decimal digits of 0 … 255, as bytes.
const DECIMAL = Array.from({ length: 256 }, (_, value) => Array.from(String(value), (char) => char.charCodeAt(0)));
const QUOTE = 34;
const COMMA = 44;
const DOT = 46;
const SLASH = 47;
// `"255.255.255.255/32",`
const MOST_BYTES_PER_PREFIX = 21;

function writeDecimal(out: Uint8Array, at: number, value: number): number {
  const digits = DECIMAL[value] as number[];
  let position = at;
  for (const digit of digits) out[position++] = digit;
  return position;
}

/** `["10.0.0.0/24","10.0.1.0/32"]`. */
export function prefixesAsJsonArray(prefixes: PrefixArrays): string {
  const out = Buffer.allocUnsafe(2 + prefixes.count * MOST_BYTES_PER_PREFIX);
  let at = 0;
  out[at++] = 91; // [
  for (let index = 0; index < prefixes.count; index += 1) {
    const base = prefixes.bases[index] as number;
    const length = prefixes.lengths[index] as number;
    if (index > 0) out[at++] = COMMA;
    out[at++] = QUOTE;
    at = writeDecimal(out, at, base >>> 24);
    out[at++] = DOT;
    at = writeDecimal(out, at, (base >>> 16) & 255);
    out[at++] = DOT;
    at = writeDecimal(out, at, (base >>> 8) & 255);
    out[at++] = DOT;
    at = writeDecimal(out, at, base & 255);
    out[at++] = SLASH;
    at = writeDecimal(out, at, length);
    out[at++] = QUOTE;
  }
  out[at++] = 93; // ]
  return out.toString("latin1", 0, at);
}
