import { InvalidPrefixError } from "../errors.js";
import { isIPv6Text, networkOf, parsePrefix, type ParseMode, type Prefix } from "./ipv4.js";
import type { PrefixArrays } from "./merge.js";

export interface PrefixListOptions {
  /** Where the text came from, for error messages (a path). */
  readonly location: string;
  readonly mode: ParseMode;
}

export interface PrefixList {
  readonly prefixes: Prefix[];
  /** IPv6 lines skipped (ACR rules are IPv4 only). */
  readonly ipv6Count: number;
  /** 1-based line numbers whose host bits were cleared (lenient mode only). */
  readonly hostBitsClearedLines: number[];
}

export interface PrefixArrayList {
  readonly prefixes: PrefixArrays;
  readonly ipv6Count: number;
  readonly hostBitsClearedLines: number[];
}

/**
 * A prefixes file: one prefix per line (`a.b.c.d` or `a.b.c.d/n`), LF or CRLF, an optional BOM;
 * blank lines and lines starting with `#` are ignored. An invalid line throws `InvalidPrefixError`
 * naming the location and line number.
 */
export function parsePrefixList(text: string, options: PrefixListOptions): PrefixList {
  const list = parsePrefixBytes(new TextEncoder().encode(text), options);
  const { count, bases, lengths } = list.prefixes;
  const prefixes: Prefix[] = new Array<Prefix>(count);
  for (let index = 0; index < count; index += 1) {
    prefixes[index] = { base: bases[index] as number, length: lengths[index] as number };
  }
  return { prefixes, ipv6Count: list.ipv6Count, hostBitsClearedLines: list.hostBitsClearedLines };
}

const LF = 10;
const CR = 13;
const TAB = 9;
const VT = 11;
const FF = 12;
const SPACE = 32;
const HASH = 35;
const DOT = 46;
const SLASH = 47;
const ZERO = 48;
const NINE = 57;
// The shortest prefix line is `1.2.3.4` and a newline: a bound on the entries a file can hold.
const SHORTEST_LINE = 8;

function isBlank(byte: number): boolean {
  return byte === SPACE || byte === TAB || byte === CR || byte === VT || byte === FF;
}

/**
 * The same file format as `parsePrefixList`, read straight from the bytes into typed arrays: no
 * string, no object per line. Lines in the plain form (`a.b.c.d[/n]`, ASCII blanks around it) are
 * parsed here; any other line (IPv6, a comment, non-ASCII, a mistake) goes to the string parser,
 * so that every message and every skip rule is the one `parsePrefix` has.
 */
export function parsePrefixBytes(bytes: Uint8Array, options: PrefixListOptions): PrefixArrayList {
  const end = bytes.length;
  const capacity = Math.floor(end / SHORTEST_LINE) + 1;
  const bases = new Uint32Array(capacity);
  const lengths = new Uint8Array(capacity);
  const hostBitsClearedLines: number[] = [];
  const lenient = options.mode === "lenient";
  let count = 0;
  let ipv6Count = 0;
  // Line numbers are only needed for a message or a lenient report: counted then, never per line.
  let countedTo = 0;
  let countedLines = 1;
  const lineNumberAt = (position: number): number => {
    for (; countedTo < position; countedTo += 1) if (bytes[countedTo] === LF) countedLines += 1;
    return countedLines;
  };

  let position = end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (position < end) {
    const lineStart = position;
    let byte = bytes[position] as number;
    while (isBlank(byte) && position < end) byte = bytes[++position] ?? LF;
    if (byte === LF || position >= end) {
      position += 1;
      continue;
    }
    if (byte !== HASH) {
      // The plain form: four octets, an optional length, blanks, then the end of the line.
      let address = 0;
      let octet = 0;
      for (; octet < 4; octet += 1) {
        const digitsStart = position;
        let value = 0;
        byte = bytes[position] ?? LF;
        while (byte >= ZERO && byte <= NINE) {
          value = value * 10 + (byte - ZERO);
          byte = bytes[++position] ?? LF;
        }
        const digits = position - digitsStart;
        if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && bytes[digitsStart] === ZERO)) break;
        address = address * 256 + value;
        if (octet < 3) {
          if (byte !== DOT) break;
          position += 1;
        }
      }
      let length = 32;
      let plain = octet === 4;
      if (plain && byte === SLASH) {
        position += 1;
        const digitsStart = position;
        length = 0;
        byte = bytes[position] ?? LF;
        while (byte >= ZERO && byte <= NINE) {
          length = length * 10 + (byte - ZERO);
          byte = bytes[++position] ?? LF;
        }
        const digits = position - digitsStart;
        plain = digits > 0 && digits <= 2 && length <= 32 && !(digits > 1 && bytes[digitsStart] === ZERO);
      }
      while (plain && isBlank(byte)) byte = bytes[++position] ?? LF;
      if (plain && byte === LF) {
        const base = networkOf(address, length);
        if (base === address || lenient) {
          if (base !== address) hostBitsClearedLines.push(lineNumberAt(lineStart));
          bases[count] = base;
          lengths[count] = length;
          count += 1;
          position += 1;
          continue;
        }
      }
    }
    // Anything else: the line as text, through the string parser (which throws or skips it).
    let lineEnd = bytes.indexOf(LF, lineStart);
    if (lineEnd < 0) lineEnd = end;
    const line = new TextDecoder().decode(bytes.subarray(lineStart, lineEnd)).trim();
    position = lineEnd + 1;
    if (line === "" || line.startsWith("#")) continue;
    if (isIPv6Text(line)) {
      ipv6Count += 1;
      continue;
    }
    const parsed = parseLine(line, lineNumberAt(lineStart), options);
    if (parsed.hostBitsCleared) hostBitsClearedLines.push(lineNumberAt(lineStart));
    bases[count] = parsed.prefix.base;
    lengths[count] = parsed.prefix.length;
    count += 1;
  }
  return {
    prefixes: { count, bases: bases.subarray(0, count), lengths: lengths.subarray(0, count) },
    ipv6Count,
    hostBitsClearedLines,
  };
}

function parseLine(line: string, lineNumber: number, options: PrefixListOptions): ReturnType<typeof parsePrefix> {
  try {
    return parsePrefix(line, { mode: options.mode });
  } catch (error) {
    if (error instanceof InvalidPrefixError) {
      throw new InvalidPrefixError(`${options.location} line ${lineNumber}: ${error.message}`, {
        details: { ...error.details, location: options.location, line: lineNumber },
        ...(error.remedy === undefined ? {} : { remedy: error.remedy }),
        cause: error,
      });
    }
    throw error;
  }
}
