import fc from "fast-check";
import IPCIDR from "ip-cidr";
import { describe, expect, it } from "vitest";
import { InvalidPrefixError, IPv6PrefixError } from "../../src/errors.js";
import {
  comparePrefixes,
  formatAddress,
  formatPrefix,
  isIPv6Text,
  networkOf,
  parsePrefix,
  prefixContains,
  prefixEnd,
  prefixSize,
} from "../../src/prefixes/ipv4.js";

const strict = { mode: "strict" } as const;
const lenient = { mode: "lenient" } as const;

function errorOf(text: string, mode: "strict" | "lenient" = "strict"): unknown {
  try {
    parsePrefix(text, { mode });
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("parsePrefix", () => {
  it("reads a bare address as a /32", () => {
    expect(parsePrefix("1.2.3.4", strict)).toEqual({
      prefix: { base: 0x01020304, length: 32 },
      hostBitsCleared: false,
    });
    expect(formatPrefix(parsePrefix("1.2.3.4", strict).prefix)).toBe("1.2.3.4/32");
  });

  it("reads prefixes across the whole space with base as an unsigned number", () => {
    expect(parsePrefix("255.255.255.255/32", strict).prefix).toEqual({ base: 2 ** 32 - 1, length: 32 });
    expect(parsePrefix("128.0.0.0/1", strict).prefix).toEqual({ base: 2 ** 31, length: 1 });
    expect(parsePrefix("0.0.0.0/0", strict).prefix).toEqual({ base: 0, length: 0 });
    expect(parsePrefix("20.42.66.0/24", strict).prefix).toEqual({
      base: 20 * 2 ** 24 + (42 << 16) + (66 << 8),
      length: 24,
    });
  });

  it("rejects host bits in strict mode and says which network was probably meant", () => {
    const error = errorOf("10.0.0.1/24");
    expect(error).toBeInstanceOf(InvalidPrefixError);
    expect((error as InvalidPrefixError).details).toMatchObject({ reason: "host-bits", network: "10.0.0.0/24" });
  });

  it("clears host bits in lenient mode and reports it", () => {
    expect(parsePrefix("10.0.0.1/24", lenient)).toEqual({
      prefix: { base: 0x0a000000, length: 24 },
      hostBitsCleared: true,
    });
    expect(parsePrefix("255.255.255.255/0", lenient)).toEqual({
      prefix: { base: 0, length: 0 },
      hostBitsCleared: true,
    });
  });

  it("throws the IPv6 error for IPv6 prefixes and addresses", () => {
    for (const text of ["2603:1030:0:11::/64", "::1", "fe80::/10", "2001:db8::"]) {
      expect(errorOf(text)).toBeInstanceOf(IPv6PrefixError);
      expect(isIPv6Text(text)).toBe(true);
    }
  });

  it("rejects malformed text with the invalid-prefix error, in both modes", () => {
    const bad = [
      "",
      " 1.2.3.4",
      "1.2.3.4 ",
      "1.2.3",
      "1.2.3.4.5",
      "1.2.3.256",
      "1.2.3.4/33",
      "1.2.3.4/",
      "1.2.3.4/-1",
      "1.2.3.4/2a",
      "01.2.3.4",
      "1.2.3.04/32",
      "1.2.3.4/032",
      "1.2.3.4/08",
      "a.b.c.d",
      "1..3.4",
      "1.2.3.4//24",
      "1.2.3.4/24/",
      "1234.1.1.1",
      "gg::1",
      "1.2.3.4:80",
      "::ffff:1.2.3.4/200",
      "1.2.3.4\n",
    ];
    for (const text of bad) {
      for (const mode of ["strict", "lenient"] as const) {
        const error = errorOf(text, mode);
        expect(error, `${JSON.stringify(text)} in ${mode} mode`).toBeInstanceOf(InvalidPrefixError);
      }
    }
  });

  it("keeps long garbage out of the message", () => {
    const error = errorOf("x".repeat(500)) as InvalidPrefixError;
    expect(error.message.length).toBeLessThan(200);
  });

  it("agrees with ip-cidr on the first and last address of any valid prefix", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), (address, length) => {
        const text = `${formatAddress(address)}/${length}`;
        const ours = parsePrefix(text, lenient);
        const theirs = new IPCIDR(text);
        expect(formatAddress(ours.prefix.base)).toBe(theirs.start());
        expect(formatAddress(prefixEnd(ours.prefix))).toBe(theirs.end());
        expect(ours.hostBitsCleared).toBe(ours.prefix.base !== address);
      }),
      { numRuns: 1000 },
    );
  });

  it("round-trips canonical text through parse and format", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), (address, length) => {
        const prefix = { base: networkOf(address, length), length };
        expect(parsePrefix(formatPrefix(prefix), strict).prefix).toEqual(prefix);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("prefix helpers", () => {
  it("counts sizes beyond 2^31 exactly", () => {
    expect(prefixSize({ base: 0, length: 0 })).toBe(2 ** 32);
    expect(prefixSize({ base: 0, length: 1 })).toBe(2 ** 31);
    expect(prefixSize({ base: 0, length: 32 })).toBe(1);
  });

  it("orders by base, then wider prefixes first", () => {
    const list = ["10.0.0.0/24", "9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/32"].map(
      (text) => parsePrefix(text, strict).prefix,
    );
    expect(list.sort(comparePrefixes).map(formatPrefix)).toEqual([
      "9.0.0.0/8",
      "10.0.0.0/8",
      "10.0.0.0/24",
      "10.0.0.0/32",
    ]);
  });

  it("tells containment", () => {
    const outer = parsePrefix("10.0.0.0/8", strict).prefix;
    expect(prefixContains(outer, parsePrefix("10.255.0.0/16", strict).prefix)).toBe(true);
    expect(prefixContains(outer, parsePrefix("11.0.0.0/16", strict).prefix)).toBe(false);
    expect(prefixContains(parsePrefix("10.0.0.0/16", strict).prefix, outer)).toBe(false);
  });

  it("does not take colon-bearing garbage for IPv6", () => {
    expect(isIPv6Text("1.2.3.4:80")).toBe(false);
    expect(isIPv6Text("hello:world")).toBe(false);
    expect(isIPv6Text("1.2.3.4")).toBe(false);
  });
});
