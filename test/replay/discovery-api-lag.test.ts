import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isIPv6Text, parsePrefix, prefixContains, type Prefix } from "../../src/prefixes/ipv4.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { FAST_TUNING, startHarness, type Harness } from "../support/harness.js";
import { seededRandom } from "../support/random.js";
import { loadAcrHistory, rebuildPublications, type Publication } from "./history.js";

/**
 * What relying on the Discovery API alone would have cost over five years. The 242 weekly files
 * 2021-2025 are replayed once through the production runtime with the Download Center page and
 * the _Latest alias failing, so the Discovery API (in the ARM emulator) is the only live source;
 * the API serves the file of 1 to 4 weeks earlier (seeded, never going backwards), the lag
 * Microsoft documents. For one registry in eastus (10-13 prefixes) it counts the weeks in which
 * the registry missed prefixes the week's file had, how many of those prefixes had been published
 * for a week or more (Microsoft starts using new addresses a week after publishing them), and the
 * rule changes that reached the registry later than the file would have brought them. One run,
 * no faults: about as long as one clean replay of the other files.
 */

const TAG = "AzureContainerRegistry.EastUS";
const DAY_MS = 86_400_000;
const publications = rebuildPublications(loadAcrHistory());

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ tags: { files: {}, latest: null } });
  scratch = mkdtempSync(join(tmpdir(), "api-lag-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function dateOf(publication: Publication): number {
  const label = publication.label;
  return Date.UTC(Number(label.slice(0, 4)), Number(label.slice(4, 6)) - 1, Number(label.slice(6, 8)));
}

function ipv4Of(publication: Publication): string[] {
  const tag = publication.file.values.find((value) => value.name === TAG);
  return (tag?.properties.addressPrefixes ?? []).filter((text) => !isIPv6Text(text));
}

function prefix(text: string): Prefix {
  return parsePrefix(text, { mode: "lenient" }).prefix;
}

interface LagFigures {
  weeks: number;
  weeksMissingPrefixes: number;
  weeksMissingAgedPrefixes: number;
  missingPrefixWeeks: number;
  weeksAllowingRemoved: number;
  ruleChanges: number;
  ruleChangesLate: number;
  totalDelayWeeks: number;
  maxDelayWeeks: number;
  lagHistogram: Record<number, number>;
}

describe("the five-year replay with the Discovery API as the only source", () => {
  it("reports what a lag of one to four weeks would have cost, and every week still converges on the API's data", async () => {
    const registryId = harness.addRegistry({
      name: `apilag${randomBytes(3).toString("hex")}`,
      location: "eastus",
      ipRules: ["203.0.113.10"],
    });
    const runtime = harness.runtime(
      {
        TARGET_REGISTRIES: registryId,
        // The page answers 404 and the alias serves nothing: only the Discovery API is left.
        SERVICE_TAGS_DETAILS_URL: `${harness.tags.origin}/en-us/download/details.aspx?id=0`,
        SERVICE_TAGS_LATEST_URL: harness.tags.latestAliasUrl,
        SERVICE_TAGS_API_LOCATION: "eastus",
      },
      { ledger: { kind: "file", path: join(scratch, "ledger.json") }, tuning: FAST_TUNING },
    );
    const random = seededRandom(11);
    const figures: LagFigures = {
      weeks: 0,
      weeksMissingPrefixes: 0,
      weeksMissingAgedPrefixes: 0,
      missingPrefixWeeks: 0,
      weeksAllowingRemoved: 0,
      ruleChanges: 0,
      ruleChangesLate: 0,
      totalDelayWeeks: 0,
      maxDelayWeeks: 0,
      lagHistogram: {},
    };
    const firstPublished = new Map<string, number>();
    const pending: { week: number }[] = [];
    const violations: string[] = [];
    let apiIndex = 0;

    for (const [week, publication] of publications.entries()) {
      const lag = 1 + Math.floor(random() * 4);
      apiIndex = Math.max(apiIndex, week - lag);
      const served = publications[Math.max(0, apiIndex)] ?? publication;
      figures.lagHistogram[week - apiIndex] = (figures.lagHistogram[week - apiIndex] ?? 0) + 1;
      harness.arm.serviceTagsApi.publish(served.file);

      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "replay",
        actor: "replay",
      });
      const origin = outcome?.ok === true ? outcome.result.plan.source : undefined;
      if (origin?.kind !== "service-tags" || origin.origin.kind !== "discovery-api") {
        violations.push(`${publication.label}: not served by the Discovery API`);
        continue;
      }
      if (origin.origin.changeNumber !== served.file.changeNumber)
        violations.push(`${publication.label}: served changeNumber ${origin.origin.changeNumber}`);

      const rules = harness.arm.registry(registryId).ipRules.map(prefix);
      const covered = (text: string): boolean => rules.some((rule) => prefixContains(rule, prefix(text)));
      for (const text of ipv4Of(publication))
        if (!firstPublished.has(text)) firstPublished.set(text, dateOf(publication));
      const missing = ipv4Of(publication).filter((text) => !covered(text));
      const aged = missing.filter((text) => dateOf(publication) - (firstPublished.get(text) ?? 0) >= 7 * DAY_MS);
      const current = new Set(ipv4Of(publication));
      const removedStillAllowed = ipv4Of(served).filter((text) => !current.has(text));
      figures.weeks += 1;
      if (missing.length > 0) figures.weeksMissingPrefixes += 1;
      if (aged.length > 0) figures.weeksMissingAgedPrefixes += 1;
      figures.missingPrefixWeeks += missing.length;
      if (removedStillAllowed.length > 0) figures.weeksAllowingRemoved += 1;

      // A week whose file changes the tag's IPv4 prefixes is a rule change the file would have brought that
      // week; the API brings it in the week it first serves that file (or a later one).
      const previous = week === 0 ? undefined : publications[week - 1];
      if (previous !== undefined && ipv4Of(previous).join() !== ipv4Of(publication).join()) {
        figures.ruleChanges += 1;
        pending.push({ week });
      }
      for (let i = pending.length - 1; i >= 0; i -= 1) {
        const change = pending[i];
        if (change === undefined || apiIndex < change.week) continue;
        const delay = week - change.week;
        if (delay > 0) figures.ruleChangesLate += 1;
        figures.totalDelayWeeks += delay;
        figures.maxDelayWeeks = Math.max(figures.maxDelayWeeks, delay);
        pending.splice(i, 1);
      }
    }

    console.log(
      [
        "Replay with the Discovery API as the only source (eastus, lag 1-4 weeks, seed 11):",
        `  weeks replayed                              ${figures.weeks}`,
        `  lag in weeks (weeks at each lag)            ${JSON.stringify(figures.lagHistogram)}`,
        `  weeks missing prefixes of the week's file   ${figures.weeksMissingPrefixes}`,
        `  ... of which published a week or more ago   ${figures.weeksMissingAgedPrefixes}`,
        `  prefix-weeks missing                        ${figures.missingPrefixWeeks}`,
        `  weeks still allowing removed prefixes       ${figures.weeksAllowingRemoved}`,
        `  weeks whose file changed the IPv4 rules     ${figures.ruleChanges}`,
        `  ... that reached the registry later         ${figures.ruleChangesLate} (by ${figures.totalDelayWeeks} weeks in all, at most ${figures.maxDelayWeeks})`,
        `  changes not yet reached at the end          ${pending.length}`,
      ].join("\n"),
    );
    expect(violations).toEqual([]);
    expect(figures.weeks).toBe(publications.length);
    // The lag is real: some weeks miss prefixes, and every change that reached the registry came late.
    expect(figures.weeksMissingPrefixes).toBeGreaterThan(0);
    expect(figures.ruleChanges).toBeGreaterThan(0);
    expect(figures.ruleChangesLate).toBe(figures.ruleChanges - pending.length);
    expect(figures.maxDelayWeeks).toBeLessThanOrEqual(4);
  }, 240_000);
});
