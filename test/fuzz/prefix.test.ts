import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidPrefixError, IPv6PrefixError } from "../../src/errors.js";
import {
  formatPrefix,
  IPV4_SPACE,
  parsePrefix,
  sizeOfLength,
  type ParseMode,
  type ParsedPrefix,
} from "../../src/prefixes/ipv4.js";
import { hostileString, parsesOrRejects, expectPrototypeUntouchedAfterAll, type Verdict } from "./hostile.js";

/**
 * `parsePrefix` reads service-tag prefixes, prefix files and rules people typed into a registry.
 * Whatever the text, it returns a well-formed prefix or throws InvalidPrefixError/IPv6PrefixError.
 */

const verdicts: Verdict[] = [];

expectPrototypeUntouchedAfterAll();

function check(text: string, mode: ParseMode): Verdict {
  const verdict = parsesOrRejects(
    () => parsePrefix(text, { mode }),
    [InvalidPrefixError, IPv6PrefixError],
    (parsed) => {
      expectWellFormedPrefix(text, mode, parsed);
    },
  );
  verdicts.push(verdict);
  return verdict;
}

function expectWellFormedPrefix(text: string, mode: ParseMode, { prefix, hostBitsCleared }: ParsedPrefix): void {
  expect(Number.isInteger(prefix.length) && prefix.length >= 0 && prefix.length <= 32).toBe(true);
  expect(Number.isInteger(prefix.base) && prefix.base >= 0 && prefix.base < IPV4_SPACE).toBe(true);
  expect(prefix.base % sizeOfLength(prefix.length)).toBe(0);
  // The canonical form parses back to the same prefix.
  expect(parsePrefix(formatPrefix(prefix), { mode: "strict" }).prefix).toEqual(prefix);
  if (mode === "strict" || !hostBitsCleared) {
    // Only canonical text is accepted as is: `a.b.c.d/n` exactly, or `a.b.c.d` for a /32.
    expect(formatPrefix(prefix)).toBe(text.includes("/") ? text : `${text}/32`);
  }
}

const octet = fc.oneof(
  fc.nat({ max: 255 }).map(String),
  fc.nat({ max: 999 }).map(String),
  fc.constantFrom("00", "01", "007", "256", "1000", "", "-1", "+1", " 1", "1e2", "0x1", "١"),
);
const lengthText = fc.oneof(
  fc.nat({ max: 32 }).map(String),
  fc.constantFrom("", "00", "08", "33", "99", "100", "-1", "3 2", "32 ", "0x10"),
);
const prefixShaped = fc
  .tuple(
    fc.array(octet, { minLength: 1, maxLength: 6 }),
    fc.constantFrom(".", ".", ".", ",", ":", ". "),
    fc.option(lengthText, { nil: undefined }),
  )
  .map(([octets, separator, length]) => `${octets.join(separator)}${length === undefined ? "" : `/${length}`}`);
const longSameChars = fc
  .tuple(fc.constantFrom("1", "9", ":", "0:", ".", "1.", "/", "f", "::ffff:"), fc.integer({ min: 1_000, max: 50_000 }))
  .map(([unit, count]) => unit.repeat(count));

describe("parsePrefix on hostile input", () => {
  it("returns a well-formed prefix or throws a typed prefix error for any text", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 60 }),
          fc.string({ unit: fc.constantFrom(..."0123456789./:abcdef ".split("")), maxLength: 40 }),
          hostileString,
        ),
        fc.constantFrom<ParseMode>("strict", "lenient"),
        (text, mode) => {
          check(text, mode);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("handles prefix-shaped text: odd octets, separators and lengths", () => {
    fc.assert(
      fc.property(prefixShaped, fc.constantFrom<ParseMode>("strict", "lenient"), (text, mode) => {
        check(text, mode);
      }),
      { numRuns: 500 },
    );
  });

  it("reads every IPv4 address and network in any mode, and reports IPv6 as IPv6", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.nat({ max: 32 }), fc.ipV6(), (ip, length, ip6) => {
        expect(check(ip, "strict")).toBe("valid");
        expect(check(`${ip}/${length}`, "lenient")).toBe("valid");
        // ip-address does not read every embedded-IPv4 form (`::0:0:0:0:0:10.0.0.0`, `::ffff:1.2.3.4/96`):
        // such text is refused as invalid, which stops the run rather than skipping the prefix (it fails
        // closed, and Microsoft's files do not use that notation).
        const allowed = ip6.includes(".") ? [IPv6PrefixError, InvalidPrefixError] : [IPv6PrefixError];
        for (const text of [ip6, `${ip6}/64`]) {
          parsesOrRejects(
            () => parsePrefix(text, { mode: "lenient" }),
            allowed,
            () => {
              throw new Error(`IPv6 text '${text}' was read as an IPv4 prefix`);
            },
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("does not hang on long runs of digits, dots, colons or hex", () => {
    fc.assert(
      fc.property(longSameChars, fc.constantFrom<ParseMode>("strict", "lenient"), (text, mode) => {
        expect(check(text, mode)).toBe("rejected");
      }),
      { numRuns: 40 },
    );
  });

  it("ends up both accepting and rejecting (the generators reach both sides)", () => {
    expect(verdicts).toContain("valid");
    expect(verdicts).toContain("rejected");
  });
});

describe("parsePrefix on the IPv6 prefixes of real service-tag files", () => {
  it.each([
    "2a01:111:f403:f910::/62",
    "2a01:111:f100:1000::/62",
    "100::/64",
    "2::/16",
    "20:1::/32",
    "2603:1030:0:11::/64",
  ])("reports %s as IPv6 so that it is skipped, not as a damaged prefix", (text) => {
    expect(() => parsePrefix(text, { mode: "strict" })).toThrow(IPv6PrefixError);
  });

  it.each(["1.2.3.4:80", "12:34", "1a.2.3.4", "1.2.3.4/24:1"])("still reports %s as an invalid IPv4 prefix", (text) => {
    expect(() => parsePrefix(text, { mode: "strict" })).toThrow(InvalidPrefixError);
    expect(() => parsePrefix(text, { mode: "strict" })).not.toThrow(IPv6PrefixError);
  });
});
