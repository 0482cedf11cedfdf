import { InvalidPrefixError } from "../errors.js";
import { isIPv6Text, parsePrefix, type ParseMode, type Prefix } from "./ipv4.js";

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

/**
 * A prefixes file: one prefix per line (`a.b.c.d` or `a.b.c.d/n`), LF or CRLF, an optional BOM;
 * blank lines and lines starting with `#` are ignored. An invalid line throws `InvalidPrefixError`
 * naming the location and line number.
 */
export function parsePrefixList(text: string, options: PrefixListOptions): PrefixList {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const prefixes: Prefix[] = [];
  const hostBitsClearedLines: number[] = [];
  let ipv6Count = 0;
  const lines = body.split("\n");
  for (let index = 0; index < lines.length; index += 1) {
    const line = (lines[index] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    if (isIPv6Text(line)) {
      ipv6Count += 1;
      continue;
    }
    try {
      const parsed = parsePrefix(line, { mode: options.mode });
      prefixes.push(parsed.prefix);
      if (parsed.hostBitsCleared) hostBitsClearedLines.push(index + 1);
    } catch (error) {
      if (error instanceof InvalidPrefixError) {
        throw new InvalidPrefixError(`${options.location} line ${index + 1}: ${error.message}`, {
          details: { ...error.details, location: options.location, line: index + 1 },
          ...(error.remedy === undefined ? {} : { remedy: error.remedy }),
          cause: error,
        });
      }
      throw error;
    }
  }
  return { prefixes, ipv6Count, hostBitsClearedLines };
}
