import { describe, expect, it } from "vitest";
import { InvalidPrefixError } from "../../src/errors.js";
import { formatPrefix } from "../../src/prefixes/ipv4.js";
import { parsePrefixList } from "../../src/prefixes/list.js";

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
});
