import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { decodeMessage, encodeMessage, messageFor } from "../../src/fanout/message.js";
import { FanoutMessageError } from "../../src/errors.js";

const ID =
  "/subscriptions/00000000-0000-0000-0000-0000000000e1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/msgreg";
const BLOB = `servicetags/${"a".repeat(64)}.json`;

describe("fan-out messages", () => {
  const settings = loadSettings({
    TARGET_REGISTRIES: JSON.stringify([{ id: ID, regions: ["eastus"], headroom: 9, pinnedRules: ["203.0.113.10"] }]),
  });
  const [target] = settings.targets;
  if (target === undefined) throw new Error("no target");
  const message = messageFor("20261201T030000000Z-abc123", target, BLOB, "timer");

  it("carry the run, the registry, the blob, the trigger and the registry's resolved values", () => {
    expect(message).toMatchObject({
      runId: "20261201T030000000Z-abc123",
      registryId: ID,
      serviceTagsBlob: BLOB,
      trigger: "timer",
      target: { regions: ["eastus"], headroom: 9, pinnedRules: ["203.0.113.10"], maxRemovalShare: 0.25 },
    });
  });

  it("carry the canary mode of a canary registry only, so the worker runs the after-change canary", () => {
    const withCanary = loadSettings({ TARGET_REGISTRIES: ID, CANARY_REGISTRIES: ID });
    const [canary] = withCanary.targets;
    if (canary === undefined) throw new Error("no target");
    const canaryMessage = messageFor("run-1", canary, BLOB, "timer");
    expect(canaryMessage.canary).toBe("dedicated");
    expect(decodeMessage(encodeMessage(canaryMessage)).canary).toBe("dedicated");
    expect("canary" in message).toBe(false);
    expect(() => decodeMessage({ ...message, canary: "always" })).toThrow(FanoutMessageError);
  });

  it("are sent as base64 and read back from base64, JSON text or the host's parsed object", () => {
    const encoded = encodeMessage(message);
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodeMessage(encoded)).toEqual(message);
    expect(decodeMessage(JSON.stringify(message))).toEqual(message);
    expect(decodeMessage(JSON.parse(JSON.stringify(message)))).toEqual(message);
  });

  it.each([
    ["not JSON", "%%%"],
    ["another shape", { hello: "world" }],
    ["a blob outside servicetags/", { ...message, serviceTagsBlob: "ledgers/x.json" }],
    ["an unknown field", { ...message, extra: 1 }],
    ["a bad override", { ...message, target: { ...message.target, headroom: -1 } }],
  ])("refuses %s with a FanoutMessageError", (_what, input) => {
    expect(() => decodeMessage(input)).toThrow(FanoutMessageError);
  });
});
