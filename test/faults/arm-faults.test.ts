import { describe, expect, it } from "vitest";
import { RegistryAccessDeniedError, RegistryOperationError, RegistryRequestError } from "../../src/errors.js";
import { REGISTRY_ACTIONS, registryResourceId, type ArmEmulator } from "../support/arm-emulator.js";
import { TEST_SUBSCRIPTION } from "../support/harness.js";
import { faultSuite, DRIFTED_RULE, PEOPLE, type FaultRow } from "./fault-lab.js";

/**
 * The ARM rows of the fault matrix: every failure of Azure Resource Manager ends either converged
 * (the SDK's retries absorb it) or unchanged and reported (a typed error, an AllowlistSyncFailed
 * event, the registry's rules exactly as before), and the next clean run converges.
 */

const suite = faultSuite("ARM");

/** Someone adds a rule by hand (portal, az CLI): `192.0.2.<n>`, a new one each time. */
function handWriter(added: string[]) {
  return (emulator: ArmEmulator, registryId: string): void => {
    const rule = `192.0.2.${added.length + 1}`;
    added.push(rule);
    emulator.setIpRules(registryId, [...emulator.registry(registryId).ipRules, rule]);
  };
}

const intoLedger = async (row: {
  runtime: { ports: { ledger: { read(id: string): Promise<{ ownedRules: readonly string[] } | undefined> } } };
  id: string;
}) => (await row.runtime.ports.ledger.read(row.id))?.ownedRules ?? [];

const rows: FaultRow[] = [
  {
    row: "429 with Retry-After",
    fault: "PATCH answered 429 Retry-After: 0, once",
    test: "converges when ARM throttles the PATCH once with Retry-After: the SDK waits and sends it again",
    expected: "converged",
    patches: "applied",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "patch",
        registryId: id,
        fault: { kind: "status", status: 429, retryAfterSeconds: 0 },
      });
    },
    verify: (o) => {
      expect(o.patchesSent).toBe(2);
    },
  },
  {
    row: "429 without Retry-After",
    fault: "GET answered 429 without Retry-After",
    test: "stops without a write when ARM throttles without Retry-After, which is not retried, and reports it",
    expected: "unchanged and reported",
    code: "RegistryRequestFailed(429)",
    patches: "none",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "get", registryId: id, fault: { kind: "status", status: 429 } });
    },
    verify: (o) => {
      expect(o.requests.map((r) => `${r.op} ${String(r.status)}`)).toEqual(["get 429"]);
    },
  },
  {
    row: "500 once",
    fault: "PATCH answered 500, once",
    test: "converges when the PATCH fails once with 500: the SDK retries it",
    expected: "converged",
    patches: "applied",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "patch", registryId: id, fault: { kind: "status", status: 500 } });
    },
    verify: (o) => {
      expect(o.patchesSent).toBe(2);
    },
  },
  {
    row: "503 once",
    fault: "GET answered 503 without Retry-After, once",
    test: "converges when the read fails once with 503: the SDK retries it",
    expected: "converged",
    patches: "applied",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "get", registryId: id, fault: { kind: "status", status: 503 } });
    },
  },
  {
    row: "500 persisting",
    fault: "every PATCH answered 500",
    test: "stops when the PATCH keeps failing with 500 past the SDK's retries, with the registry unchanged, and reports it",
    expected: "unchanged and reported",
    code: "RegistryRequestFailed(500)",
    patches: "refused",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "patch",
        registryId: id,
        times: Infinity,
        fault: { kind: "status", status: 500 },
      });
    },
    verify: (o) => {
      // One try and FAST_TUNING's two retries.
      expect(o.patchesSent).toBe(3);
      expect(!o.outcome.ok && o.outcome.error instanceof RegistryRequestError && o.outcome.error.message).toMatch(
        /may or may not have been applied/,
      );
    },
  },
  {
    row: "connection reset once",
    fault: "PATCH connection reset, once",
    test: "converges when the connection is reset during the PATCH once: the SDK retries it",
    expected: "converged",
    patches: "applied",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "patch", registryId: id, fault: { kind: "reset" } });
    },
    verify: (o) => {
      expect(o.patchesSent).toBe(2);
    },
  },
  {
    row: "connection reset persisting",
    fault: "every GET connection reset",
    test: "stops without a write when every connection to ARM is reset, and reports it",
    expected: "unchanged and reported",
    code: "RegistryRequestFailed(network)",
    patches: "none",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "get", registryId: id, times: Infinity, fault: { kind: "reset" } });
    },
  },
  {
    row: "timeout",
    fault: "PATCH never answered (request timeout 2 s)",
    test: "stops when the PATCH gets no answer within the request timeout, with the registry unchanged, and reports it",
    expected: "unchanged and reported",
    code: "RegistryRequestFailed(timeout)",
    patches: "refused",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "patch", registryId: id, fault: { kind: "hang" } });
    },
  },
  {
    row: "LRO Failed",
    fault: "PATCH accepted (201), operation ends Failed",
    test: "stops when the long-running update ends Failed, with the registry unchanged, and reports ARM's code",
    expected: "unchanged and reported",
    code: "RegistryOperationFailed(operation-failed)",
    patches: "refused",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "patch",
        registryId: id,
        fault: { kind: "lro-failed", code: "InternalServerError", message: "Update failed." },
      });
    },
    verify: (o) => {
      expect(
        !o.outcome.ok && o.outcome.error instanceof RegistryOperationError && o.outcome.error.details.armCode,
      ).toBe("InternalServerError");
    },
  },
  {
    row: "LRO stuck",
    fault: "operation InProgress forever; SYNC_OPERATION_TIMEOUT_MS=1000",
    test: "stops when the long-running update is still InProgress at the deadline, and the next run converges",
    expected: "unchanged and reported",
    code: "RegistryOperationFailed(deadline)",
    patches: "refused",
    prior: true,
    settings: { SYNC_OPERATION_TIMEOUT_MS: "1000" },
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "patch", registryId: id, fault: { kind: "lro-stuck" } });
    },
    verify: (o) => {
      expect(o.requests.filter((r) => r.op === "poll").length).toBeGreaterThan(1);
    },
  },
  {
    row: "LRO stuck, applied late",
    fault: "as above, then the operation applies our list after the run gave up",
    test: "owns the rules of an update that finished after the run gave up on it, so the next run neither re-adds nor disowns them",
    expected: "unchanged and reported",
    code: "RegistryOperationFailed(deadline)",
    patches: "refused",
    prior: true,
    settings: { SYNC_OPERATION_TIMEOUT_MS: "1000" },
    inject: ({ id }) => {
      suite.harness.arm.injectFault({ op: "patch", registryId: id, fault: { kind: "lro-stuck" } });
    },
    heal: ({ id }) => {
      const sent = suite.harness.arm.patchBodies(id).at(-1) as {
        properties: { networkRuleSet: { ipRules: { value: string }[] } };
      };
      suite.harness.arm.setIpRules(
        id,
        sent.properties.networkRuleSet.ipRules.map((rule) => rule.value),
      );
    },
    verifyNext: async (o, context) => {
      expect(o.patchesSent).toBe(0);
      expect(o.after).toContain(DRIFTED_RULE);
      expect(await intoLedger(context)).toContain(DRIFTED_RULE);
    },
  },
  {
    row: "401",
    fault: "every GET answered 401 InvalidAuthenticationToken",
    test: "stops without a write when ARM refuses the token, and reports it",
    expected: "unchanged and reported",
    code: "RegistryAccessDenied(401)",
    patches: "none",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "get",
        registryId: id,
        times: Infinity,
        fault: { kind: "status", status: 401 },
      });
    },
  },
  {
    row: "403",
    fault: "role lacks registries/write: PATCH answered 403",
    test: "stops when the identity may read but not write the registry, with the registry unchanged, and names the missing role",
    expected: "unchanged and reported",
    code: "RegistryAccessDenied(403)",
    patches: "refused",
    spec: { deniedActions: [REGISTRY_ACTIONS.patch] },
    inject: () => undefined,
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { deniedActions: [] });
    },
    verify: (o) => {
      expect(!o.outcome.ok && o.outcome.error instanceof RegistryAccessDeniedError && o.outcome.error.remedy).toMatch(
        /registries\/write/,
      );
    },
  },
  {
    row: "404 registry",
    fault: "TARGET_REGISTRIES names a resource group the registry is not in",
    test: "stops without a write when the registry is not found, and converges once the target is corrected",
    expected: "unchanged and reported",
    code: "RegistryNotFound(404)",
    patches: "none",
    setup: (l) => {
      const id = l.addRegistry();
      const name = id.slice(id.lastIndexOf("/") + 1);
      return l.context(id, l.blobRuntime(registryResourceId(TEST_SUBSCRIPTION, "rg-moved", name)));
    },
    inject: () => undefined,
    heal: (context) => {
      suite.lab.rebuild(context, {}, context.id);
    },
    verify: (o) => {
      expect(o.requests.every((r) => r.op === "get" && r.status === 404)).toBe(true);
    },
  },
  {
    row: "NetworkRuleNotSupported",
    fault: "SKU downgraded to Standard between read and PATCH",
    test: "stops when ARM refuses network rules for the SKU, with the registry unchanged, and converges once it is Premium again",
    expected: "unchanged and reported",
    code: "NetworkRuleNotSupported(400)",
    patches: "refused",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "patch",
        registryId: id,
        fault: {
          kind: "concurrent-writer",
          when: "before",
          write: (emulator, registryId) => {
            emulator.updateRegistry(registryId, { sku: "Standard" });
          },
        },
      });
    },
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { sku: "Premium" });
    },
  },
  {
    row: "quota 400",
    fault: "IP rule quota lowered to 12 between read and PATCH (SYNC_HEADROOM=0)",
    test: "stops when ARM refuses the list for the rule quota, and the next run plans within the limit it reads again",
    expected: "unchanged and reported",
    code: "RuleQuotaExceeded(400)",
    patches: "refused",
    settings: { SYNC_HEADROOM: "0" },
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "patch",
        registryId: id,
        fault: {
          kind: "concurrent-writer",
          when: "before",
          write: (emulator, registryId) => {
            emulator.updateRegistry(registryId, { ruleLimit: 12 });
          },
        },
      });
    },
    verifyNext: (o) => {
      expect(o.after).toHaveLength(12);
      expect(o.outcome.ok && o.outcome.result.plan.aggregation.extraAddresses).toBeGreaterThan(0);
    },
  },
  (() => {
    const added: string[] = [];
    return {
      row: "someone writes between our read and our PATCH",
      fault: "a rule added by hand right after our GET",
      test: "keeps a rule someone added between our read and our PATCH: the registry is read again before writing",
      expected: "converged",
      patches: "applied",
      addedByPeople: () => added,
      inject: ({ id }) => {
        suite.harness.arm.injectFault({
          op: "get",
          registryId: id,
          fault: { kind: "concurrent-writer", when: "after", write: handWriter(added) },
        });
      },
      verify: async (o, context) => {
        expect(added).toEqual(["192.0.2.1"]);
        expect(o.after).toContain("192.0.2.1");
        expect(o.outcome.ok && o.outcome.result.attempts).toBe(2);
        expect(await intoLedger(context)).not.toContain("192.0.2.1/32");
      },
    } satisfies FaultRow;
  })(),
  {
    row: "firewall turned off between our read and our PATCH",
    fault: "defaultAction set to Allow by hand right after our GET",
    test: "never turns a firewall back on that someone turned off between our read and our PATCH: the re-plan trips the Allow guard",
    expected: "unchanged and reported",
    code: "GuardTripped(default-action-allow)",
    patches: "none",
    inject: ({ id }) => {
      suite.harness.arm.injectFault({
        op: "get",
        registryId: id,
        fault: {
          kind: "concurrent-writer",
          when: "after",
          write: (emulator, registryId) => {
            emulator.updateRegistry(registryId, { defaultAction: "Allow" });
          },
        },
      });
    },
    verify: ({ outcome, state }) => {
      expect(state.defaultAction).toBe("Allow");
      expect(!outcome.ok && outcome.error instanceof Error && outcome.error.message).toMatch(/defaultAction Allow/);
    },
    // They turn it back on; the next run converges.
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { defaultAction: "Deny" });
    },
  },
  (() => {
    const added: string[] = [];
    return {
      row: "someone writes between our PATCH and our read-back",
      fault: "a rule added by hand right after our change is applied",
      test: "re-plans once when someone writes between our PATCH and our read-back, and keeps their rule",
      expected: "converged",
      patches: "applied",
      prior: true,
      addedByPeople: () => added,
      inject: ({ id }) => {
        suite.harness.arm.injectFault({
          op: "patch",
          registryId: id,
          fault: { kind: "concurrent-writer", when: "after", write: handWriter(added) },
        });
      },
      verify: async (o, context) => {
        expect(o.after).toEqual([...PEOPLE, ...o.before.slice(PEOPLE.length), DRIFTED_RULE, "192.0.2.1"]);
        expect(o.outcome.ok && o.outcome.result.attempts).toBe(2);
        expect(await intoLedger(context)).not.toContain("192.0.2.1/32");
      },
    } satisfies FaultRow;
  })(),
];

describe("ARM faults", () => {
  for (const row of rows) it(row.test, () => suite.lab.runRow(suite.matrix, row));

  it("has a verdict for every row, each as expected", () => {
    expect(suite.matrix.entries.map((e) => e.row)).toEqual(rows.map((r) => r.row));
    expect(suite.matrix.entries.filter((e) => !e.matched)).toEqual([]);
  });
});
