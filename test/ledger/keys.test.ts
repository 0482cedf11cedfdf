import { describe, expect, it } from "vitest";
import { registryKey, sameRegistry } from "../../src/ledger/keys.js";

describe("registryKey", () => {
  it("lower-cases an ARM resource id into a blob path", () => {
    expect(
      registryKey(
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/RG-Build/providers/Microsoft.ContainerRegistry/registries/ContosoACR",
      ),
    ).toBe(
      "subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg-build/providers/microsoft.containerregistry/registries/contosoacr",
    );
  });

  it("percent-encodes characters that resource-group names allow but paths would misread", () => {
    expect(registryKey("/subscriptions/s/resourceGroups/rg (test)#1?x/providers/p/registries/r")).toBe(
      "subscriptions/s/resourcegroups/rg%20(test)%231%3Fx/providers/p/registries/r",
    );
    expect(registryKey("/a/../b/.")).toBe("a/%2E%2E/b/%2E");
  });

  it("refuses an empty id", () => {
    expect(() => registryKey(" / ")).toThrow(RangeError);
  });
});

describe("sameRegistry", () => {
  it("compares ids case-insensitively, as ARM does", () => {
    expect(sameRegistry("/Subscriptions/S/registries/A", "/subscriptions/s/registries/a")).toBe(true);
    expect(sameRegistry("/subscriptions/s/registries/a", "/subscriptions/s/registries/b")).toBe(false);
  });
});
