import { describe, expect, it } from "vitest";
import { legacyVirtualNetworkRulesFrom } from "../../src/registry/arm-schema.js";
import { RegistryStateInvalidError } from "../../src/errors.js";

const REF = {
  id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
  subscriptionId: "x",
  resourceGroup: "rg",
  name: "myreg",
};

describe("the VNetRules usage", () => {
  it("counts the legacy rules in use, whatever the letter case of the name", () => {
    expect(legacyVirtualNetworkRulesFrom({ value: [{ name: "vnetrules", limit: 100, currentValue: 4 }] }, REF)).toBe(4);
  });

  it("is 0 when listUsages has no VNetRules entry or no current value", () => {
    expect(legacyVirtualNetworkRulesFrom({ value: [{ name: "IPRules", limit: 100, currentValue: 9 }] }, REF)).toBe(0);
    expect(legacyVirtualNetworkRulesFrom({ value: [{ name: "VNetRules", limit: 100 }] }, REF)).toBe(0);
    expect(legacyVirtualNetworkRulesFrom({}, REF)).toBe(0);
  });

  it("refuses a count it cannot trust instead of assuming none", () => {
    expect(() => legacyVirtualNetworkRulesFrom({ value: [{ name: "VNetRules", currentValue: -1 }] }, REF)).toThrow(
      RegistryStateInvalidError,
    );
  });
});
