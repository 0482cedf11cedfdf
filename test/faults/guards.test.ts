import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConvergenceError, LockHeldError, TagNotFoundError } from "../../src/errors.js";
import { createFileLedgerStore } from "../../src/ledger/file-store.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";
import { faultSuite, DRIFTED_RULE, JAPAN_EAST, PEOPLE, type FaultRow, type RunObservation } from "./fault-lab.js";

/**
 * The guard rows: each unsafe situation stops the run with a typed error, a clear message and
 * no write (AllowlistGuardTripped, or AllowlistSyncFailed for the source chain's refusals), and
 * the run converges once the situation is fixed or an operator forces it where that is allowed.
 */

const ORIGINAL = readServiceTagsFixture("ServiceTags_Public_20251020.acr.json");
const NEWEST = "ServiceTags_Public_20251020.json";
/** A later week: the details page links the newest file, so publishing it changes what every run reads. */
const NEXT_WEEK = "ServiceTags_Public_20251027.json";

const suite = faultSuite("guards");

interface TagValue {
  name: string;
  properties: { changeNumber: number; addressPrefixes: string[] };
}

/** Publishes next week's file: this week's with `change` applied (and on the alias too when `alias`). */
function publishNextWeek(change: (values: TagValue[]) => TagValue[], options: { alias?: boolean } = {}): void {
  const file = JSON.parse(ORIGINAL.toString("utf8")) as { values: TagValue[] };
  file.values = change(file.values);
  suite.harness.tags.publish(NEXT_WEEK, JSON.stringify(file));
  if (options.alias === true) suite.harness.tags.setLatest(NEXT_WEEK);
}

/** Next week's file becomes this week's again (the server cannot unpublish). */
function restoreFile(): void {
  suite.harness.tags.publish(NEXT_WEEK, ORIGINAL);
  suite.harness.tags.setLatest(NEWEST);
}

function withJapanEast(values: TagValue[], prefixes: (current: string[]) => string[]): TagValue[] {
  return values.map((value) =>
    value.name === "AzureContainerRegistry.JapanEast"
      ? {
          ...value,
          properties: {
            ...value.properties,
            changeNumber: value.properties.changeNumber + 1,
            addressPrefixes: prefixes(value.properties.addressPrefixes),
          },
        }
      : value,
  );
}

const errorOf = (o: RunObservation): unknown => (o.outcome.ok ? undefined : o.outcome.error);
const messageOf = (o: RunObservation): string => {
  const error = errorOf(o);
  return error instanceof Error ? error.message : "";
};

const rows: FaultRow[] = [
  {
    row: "selected tag missing",
    fault: "next week's file lacks AzureContainerRegistry.JapanEast",
    test: "stops without a write when the registry's tag vanished from the file, and never reads that as 'allow nothing'",
    expected: "unchanged and reported",
    code: "ServiceTagMissing",
    patches: "none",
    prior: true,
    inject: () => {
      publishNextWeek((values) => values.filter((value) => value.name !== "AzureContainerRegistry.JapanEast"));
    },
    verify: (o) => {
      expect(errorOf(o)).toBeInstanceOf(TagNotFoundError);
      expect(messageOf(o)).toMatch(/AzureContainerRegistry\.japaneast not found/i);
    },
    heal: restoreFile,
  },
  {
    row: "file below the sanity bound",
    fault: "next week's file holds 2 ACR tags (SERVICE_TAGS_MIN_ACR_TAGS=3), on the alias too",
    test: "refuses a file with fewer ACR tags than the sanity bound in the source chain, before any ARM call",
    expected: "unchanged and reported",
    code: "ServiceTagsUnavailable(too-few-acr-tags,no-copy)",
    patches: "none",
    settings: { SERVICE_TAGS_MIN_ACR_TAGS: "3" },
    inject: () => {
      publishNextWeek(
        (values) =>
          values.filter(
            (v) => v.name === "AzureContainerRegistry.JapanEast" || v.name === "AzureContainerRegistry.JapanWest",
          ),
        { alias: true },
      );
    },
    verify: (o) => {
      expect(o.requests).toEqual([]);
      expect(messageOf(o)).toMatch(/2 AzureContainerRegistry tag\(s\), fewer than the 3 required/);
    },
    heal: restoreFile,
  },
  {
    row: "cloud differs",
    fault: "SERVICE_TAGS_CLOUD=China; the page links only Public files, the alias serves one",
    test: "refuses a file of another cloud than the configured one, before any ARM call",
    expected: "unchanged and reported",
    code: "ServiceTagsUnavailable(no-link,wrong-cloud,no-copy)",
    patches: "none",
    settings: { SERVICE_TAGS_CLOUD: "China" },
    inject: () => undefined,
    verify: (o) => {
      expect(o.requests).toEqual([]);
      expect(messageOf(o)).toMatch(/cloud 'Public', but 'China' is configured/);
    },
    heal: (context) => {
      suite.lab.rebuild(context);
    },
  },
  {
    row: "mass removal",
    fault: "next week's JapanEast keeps 2 of its 11 prefixes (SYNC_MAX_REMOVAL_SHARE=0.25)",
    test: "stops without a write when the plan revokes more than the allowed share of owned rules, and passes when forced",
    expected: "unchanged and reported",
    code: "GuardTripped(mass-removal)",
    patches: "none",
    prior: true,
    covers: JAPAN_EAST.slice(0, 2),
    inject: (context) => {
      publishNextWeek((values) =>
        withJapanEast(values, (prefixes) => [...JAPAN_EAST.slice(0, 2), ...prefixes.filter((p) => p.includes(":"))]),
      );
      context.cleanups.push(restoreFile);
    },
    verify: (o) => {
      expect(messageOf(o)).toMatch(/revokes 8 of 10 owned rules \(at most 2 allowed/);
    },
    heal: (context) => {
      context.force = true;
    },
    next: "converged when forced",
    verifyNext: (o) => {
      expect(o.after).toEqual([...PEOPLE, ...JAPAN_EAST.slice(0, 2)]);
      expect(o.outcome.ok && o.outcome.result.plan.revokedRules).toHaveLength(8);
    },
  },
  {
    row: "no fit above the prefix-length floor",
    fault: "rule limit 12, headroom 5, 2 people's rules: budget 5; the tag spans 6 /16s",
    test: "stops without a write when no cover within the budget respects SYNC_MIN_PREFIX_LENGTH, and converges with more room",
    expected: "unchanged and reported",
    code: "CoverInfeasible",
    patches: "none",
    spec: { ruleLimit: 12 },
    inject: () => undefined,
    verify: (o) => {
      expect(messageOf(o)).toMatch(/\/16/);
    },
    heal: (context) => {
      suite.lab.rebuild(context, { SYNC_HEADROOM: "2" });
    },
    verifyNext: (o) => {
      expect(o.after.length).toBeLessThanOrEqual(10);
      expect(o.outcome.ok && o.outcome.result.plan.aggregation.extraAddresses).toBeGreaterThan(0);
    },
  },
  {
    row: "extra-address cap",
    fault: "budget 8 needs aggregation; SYNC_MAX_EXTRA_ADDRESSES=0",
    test: "stops without a write when fitting the budget would admit more extra addresses than the cap, and converges without it",
    expected: "unchanged and reported",
    code: "ExtraAddressCapExceeded",
    patches: "none",
    spec: { ruleLimit: 12 },
    settings: { SYNC_HEADROOM: "2", SYNC_MAX_EXTRA_ADDRESSES: "0" },
    inject: () => undefined,
    heal: (context) => {
      suite.lab.rebuild(context, { SYNC_HEADROOM: "2" });
    },
  },
  {
    row: "registry not Premium",
    fault: "SKU Standard (ARM then shows no networkRuleSet)",
    test: "stops without a write on a registry that is not Premium, and converges once it is",
    expected: "unchanged and reported",
    code: "GuardTripped(sku+default-action-allow)",
    patches: "none",
    spec: { sku: "Standard" },
    inject: () => undefined,
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { sku: "Premium" });
    },
  },
  {
    row: "registry not Succeeded",
    fault: "provisioningState Updating",
    test: "stops without a write while the registry is not in the Succeeded state, and converges once it is",
    expected: "unchanged and reported",
    code: "GuardTripped(provisioning-state)",
    patches: "none",
    spec: { provisioningState: "Updating" },
    inject: () => undefined,
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { provisioningState: "Succeeded" });
    },
  },
  {
    row: "public network access Disabled",
    fault: "publicNetworkAccess Disabled",
    test: "stops without a write while public network access is disabled, and converges once it is enabled",
    expected: "unchanged and reported",
    code: "GuardTripped(public-network-disabled)",
    patches: "none",
    spec: { publicNetworkAccess: "Disabled" },
    inject: () => undefined,
    heal: ({ id }) => {
      suite.harness.arm.updateRegistry(id, { publicNetworkAccess: "Enabled" });
    },
  },
  {
    row: "defaultAction Allow",
    fault: "firewall off (defaultAction Allow)",
    test: "writes nothing while the firewall is off by default, and prepares the rules with SYNC_WRITE_WHEN_DEFAULT_ALLOW=true without turning it on",
    expected: "unchanged and reported",
    code: "GuardTripped(default-action-allow)",
    patches: "none",
    spec: { defaultAction: "Allow" },
    inject: () => undefined,
    heal: (context) => {
      suite.lab.rebuild(context, { SYNC_WRITE_WHEN_DEFAULT_ALLOW: "true" });
    },
    verifyNext: (o) => {
      expect(o.state.defaultAction).toBe("Allow");
      expect(o.patchesSent).toBe(1);
      expect(suite.harness.arm.patchBodies(o.outcome.target.ref.id).at(-1)).toMatchObject({
        properties: { networkRuleSet: { defaultAction: "Allow" } },
      });
    },
  },
  {
    row: "empty list while Deny",
    fault: "no people's rules; next week's JapanEast has only IPv6; forced",
    test: "never sends an empty rule list while defaultAction is Deny, even when forced",
    expected: "unchanged and reported",
    code: "GuardTripped(source-too-small+empty-deny-list)",
    patches: "none",
    people: [],
    prior: true,
    inject: (context) => {
      publishNextWeek((values) => withJapanEast(values, (prefixes) => prefixes.filter((p) => p.includes(":"))));
      context.cleanups.push(restoreFile);
      context.force = true;
    },
    verify: (o) => {
      expect(o.after.length).toBe(JAPAN_EAST.length - 1);
    },
    heal: (context) => {
      restoreFile();
      context.force = false;
    },
  },
  (() => {
    let held: { release(): Promise<void> } | undefined;
    let path = "";
    return {
      row: "one writer at a time",
      fault: "another CLI run holds the file ledger's lock; SYNC_LOCK_WAIT_MS=300",
      test: "waits for another run's lock, then stops with LockHeldError and no write, and converges once it is released",
      expected: "unchanged and reported",
      code: "LockHeld",
      patches: "none",
      setup: (l) => {
        const id = l.addRegistry();
        path = join(mkdtempSync(join(tmpdir(), "faults-ledger-")), "ledger.json");
        const context = l.context(
          id,
          suite.harness.runtime(
            { TARGET_REGISTRIES: id, SYNC_LOCK_WAIT_MS: "300" },
            { ledger: { kind: "file", path } },
          ),
        );
        context.cleanups.push(async () => held?.release());
        return context;
      },
      inject: async ({ id }) => {
        held = await createFileLedgerStore({ path, owner: "cli:alice@laptop" }).acquireLock(id, { waitMs: 0 });
      },
      verify: (o) => {
        expect(o.requests).toEqual([]);
        expect(errorOf(o)).toBeInstanceOf(LockHeldError);
        expect(messageOf(o)).toContain("cli:alice@laptop");
      },
      heal: () => held?.release(),
    } satisfies FaultRow;
  })(),
  (() => {
    const keepsWriting: FaultRow = {
      row: "someone keeps writing",
      fault: "after every PATCH another tool puts its own list back",
      test: "re-plans once after a read-back mismatch, then stops with ConvergenceError when someone keeps writing",
      expected: "unchanged and reported",
      code: "NotConverged",
      patches: "applied",
      prior: true,
      inject: ({ id }) => {
        const theirs = suite.harness.arm.registry(id).ipRules;
        suite.harness.arm.injectFault({
          op: "patch",
          registryId: id,
          times: Infinity,
          fault: {
            kind: "concurrent-writer",
            when: "after",
            write: (emulator, registryId) => {
              emulator.setIpRules(registryId, theirs);
            },
          },
        });
      },
      verify: (o) => {
        expect(errorOf(o)).toBeInstanceOf(ConvergenceError);
        // Our PATCH and the re-planned one, each undone.
        expect(o.writesApplied).toBe(2);
        expect(o.after).not.toContain(DRIFTED_RULE);
      },
    };
    return keepsWriting;
  })(),
];

describe("guards", () => {
  for (const row of rows) it(row.test, () => suite.lab.runRow(suite.matrix, row));

  it("has a verdict for every row, each as expected", () => {
    expect(suite.matrix.entries.map((e) => e.row)).toEqual(rows.map((r) => r.row));
    expect(suite.matrix.entries.filter((e) => !e.matched)).toEqual([]);
  });
});
