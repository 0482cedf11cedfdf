import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidPrefixError } from "../../src/errors.js";
import { formatPrefix, isIPv6Text, parsePrefix, type ParseMode } from "../../src/prefixes/ipv4.js";
import { parsePrefixBytes, parsePrefixList } from "../../src/prefixes/list.js";

/** The file format by its definition, one line at a time on strings: the oracle for the byte parser. */
function referenceList(
  text: string,
  mode: ParseMode,
): { prefixes: string[]; ipv6: number; cleared: number[] } | string {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const prefixes: string[] = [];
  const cleared: number[] = [];
  let ipv6 = 0;
  const lines = body.split("\n");
  for (let index = 0; index < lines.length; index += 1) {
    const line = (lines[index] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    if (isIPv6Text(line)) {
      ipv6 += 1;
      continue;
    }
    try {
      const parsed = parsePrefix(line, { mode });
      prefixes.push(formatPrefix(parsed.prefix));
      if (parsed.hostBitsCleared) cleared.push(index + 1);
    } catch (error) {
      return `line ${index + 1}: ${(error as Error).message}`;
    }
  }
  return { prefixes, ipv6, cleared };
}

function byteList(text: string, mode: ParseMode): ReturnType<typeof referenceList> {
  try {
    const list = parsePrefixBytes(new TextEncoder().encode(text), { location: "f", mode });
    const { count, bases, lengths } = list.prefixes;
    const prefixes = Array.from({ length: count }, (_, i) =>
      formatPrefix({ base: bases[i] as number, length: lengths[i] as number }),
    );
    return { prefixes, ipv6: list.ipv6Count, cleared: list.hostBitsClearedLines };
  } catch (error) {
    return (error as Error).message.replace(/^f /, "");
  }
}

const lineText = fc.oneof(
  fc
    .tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300), fc.option(fc.nat(40)))
    .map(([a, b, c, d, n]) => `${a}.${b}.${c}.${d}${n === null ? "" : `/${n}`}`),
  fc.constantFrom("", "#", "# x", " ", "\t", "\r", "::1", "2603:1030::/48", "100::/64", "1.2.3.4 /8", "010.0.0.1"),
  fc.constantFrom("10.0.0.0/08", "10.0.0.0/", "1.2.3", "1.2.3.4.5", "\u00a010.0.0.0/8", "10.0.0.0/8\u2003", "ï»¿"),
  fc.string({ maxLength: 12 }),
);
const blanks = fc.constantFrom("", " ", "  ", "\t", "\r", " \r");
const fileText = fc
  .tuple(
    fc.boolean(),
    fc.array(
      fc.tuple(blanks, lineText, blanks).map(([a, line, b]) => a + line + b),
      { maxLength: 12 },
    ),
  )
  .map(([bom, lines]) => (bom ? "\uFEFF" : "") + lines.join("\n"));

describe("parsePrefixList", () => {
  it("reads one prefix per line, skipping blanks and comments, with CRLF and a BOM", () => {
    const list = parsePrefixList("\uFEFF# office\r\n10.0.0.1\r\n\r\n  20.42.66.0/24  \r\n", {
      location: "rules.txt",
      mode: "strict",
    });
    expect(list.prefixes.map(formatPrefix)).toEqual(["10.0.0.1/32", "20.42.66.0/24"]);
    expect(list.ipv6Count).toBe(0);
  });

  it("skips and counts IPv6 lines", () => {
    const list = parsePrefixList("10.0.0.0/8\n2603:1030::/48\n::1\n", { location: "rules.txt", mode: "strict" });
    expect(list.prefixes).toHaveLength(1);
    expect(list.ipv6Count).toBe(2);
  });

  it("names the file and line of an invalid prefix", () => {
    try {
      parsePrefixList("10.0.0.0/8\n\n10.0.0.1/24\n", { location: "rules.txt", mode: "strict" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPrefixError);
      expect((error as InvalidPrefixError).message).toContain("rules.txt line 3");
      expect((error as InvalidPrefixError).details).toMatchObject({
        line: 3,
        location: "rules.txt",
        reason: "host-bits",
      });
    }
  });

  it("reports the lines whose host bits were cleared in lenient mode", () => {
    const list = parsePrefixList("10.0.0.1/24\n10.0.1.0/24\n10.0.2.9/31\n", { location: "rules.txt", mode: "lenient" });
    expect(list.prefixes.map(formatPrefix)).toEqual(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.8/31"]);
    expect(list.hostBitsClearedLines).toEqual([1, 3]);
  });

  it("reads bytes exactly as the line-by-line definition does: the same prefixes, skips, line numbers and messages", () => {
    fc.assert(
      fc.property(fileText, fc.constantFrom<ParseMode>("strict", "lenient"), (text, mode) => {
        expect(byteList(text, mode)).toEqual(referenceList(text, mode));
      }),
      { numRuns: 2_000 },
    );
  });
});
