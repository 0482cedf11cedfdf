import { describe, expect, it } from "vitest";
import { InvalidPrefixError, IPv6PrefixError } from "../../src/errors.js";
import { canonicalizeRegistryRule, canonicalRule } from "../../src/prefixes/canonical.js";

describe("canonicalRule", () => {
  it("writes a bare address and its /32 form the same way", () => {
    expect(canonicalRule("1.2.3.4")).toBe("1.2.3.4/32");
    expect(canonicalRule("1.2.3.4/32")).toBe("1.2.3.4/32");
  });

  it("leaves a canonical prefix unchanged", () => {
    expect(canonicalRule("20.42.66.0/24")).toBe("20.42.66.0/24");
  });

  it("refuses host bits unless asked to be lenient", () => {
    expect(() => canonicalRule("10.0.0.1/24")).toThrow(InvalidPrefixError);
    expect(canonicalRule("10.0.0.1/24", "lenient")).toBe("10.0.0.0/24");
  });

  it("refuses IPv6 with its own error", () => {
    expect(() => canonicalRule("2603:1030::/48")).toThrow(IPv6PrefixError);
  });
});

describe("canonicalizeRegistryRule", () => {
  it("clears host bits of a hand-typed rule and says so", () => {
    expect(canonicalizeRegistryRule("10.0.0.1/24")).toEqual({ rule: "10.0.0.0/24", hostBitsCleared: true });
  });

  it("accepts the bare-address form ARM may return, with surrounding spaces", () => {
    expect(canonicalizeRegistryRule(" 52.1.2.3 ")).toEqual({ rule: "52.1.2.3/32", hostBitsCleared: false });
  });

  it("still rejects text that is not an IPv4 prefix", () => {
    expect(() => canonicalizeRegistryRule("52.1.2")).toThrow(InvalidPrefixError);
  });
});
