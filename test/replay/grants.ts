import type { Runtime } from "../../src/app/runtime.js";
import { GrantRefusedError } from "../../src/errors.js";
import type { LedgerState } from "../../src/ledger/types.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { createGrantId } from "../../src/sync/run.js";
import type { Harness } from "../support/harness.js";
import type { Publication } from "./history.js";

/**
 * A seeded stream of temporary grants laid over the weekly replay. ARM's clock (the emulator's
 * Date header, which is the run clock of grant expiry) follows the history: each week's runs
 * happen at 03:00 UTC of the file's date, and grants are made on a random day in between, lasting
 * from one minute to the 7-day maximum. After every week the grants are checked from the outside:
 * a grant that expired by the week's run clock is gone from the registry and the ledger, every
 * other one is there. So no grant is alive past its ttl plus one run.
 */

export interface GrantStreamOptions {
  readonly seed: number;
  /** Chance per week that someone asks for a grant. */
  readonly grantShare: number;
  /** Chance per week that someone revokes an active grant early. */
  readonly revokeShare: number;
}

export interface GrantFigures {
  requested: number;
  added: number;
  refused: number;
  alreadyAdmitted: number;
  revoked: number;
  /** Grants whose expiry a weekly run applied. */
  expired: number;
  maxActive: number;
}

interface Made {
  readonly id: string;
  readonly rule: string;
  readonly expiresAt: number;
  revoked: boolean;
  removedSeen: boolean;
}

const HOUR = 3_600_000;
const MAX_TTL = 7 * 24 * HOUR;

export class GrantStream {
  readonly figures: GrantFigures = {
    requested: 0,
    added: 0,
    refused: 0,
    alreadyAdmitted: 0,
    revoked: 0,
    expired: 0,
    maxActive: 0,
  };
  private readonly made: Made[] = [];
  private clock = 0;

  constructor(
    private readonly harness: Harness,
    private readonly random: () => number,
    private readonly options: GrantStreamOptions,
  ) {}

  /** 03:00 UTC of the file's date: when the week's timer runs. */
  runTimeOf(publication: Publication): number {
    const label = publication.label;
    return Date.parse(`${label.slice(0, 4)}-${label.slice(4, 6)}-${label.slice(6, 8)}T03:00:00.000Z`);
  }

  /** Sets ARM's clock to the week's run time (never backwards: four dates were published twice). */
  startWeek(publication: Publication): number {
    this.clock = Math.max(this.runTimeOf(publication), this.clock + 60_000);
    this.setArmClock(this.clock);
    return this.clock;
  }

  /** True when the week's runs must write to end a grant (so an unchanged selection may still PATCH). */
  endsGrants(rulesBefore: readonly string[]): boolean {
    return this.made.some(
      (grant) => !grant.revoked && grant.expiresAt <= this.clock && rulesBefore.includes(grant.rule),
    );
  }

  /**
   * After the week's runs: the grants' invariants at the run clock, then this week's grant and
   * revoke commands (run like the CLI does, on ARM's clock at a random moment before the next week).
   */
  async afterWeek(week: {
    readonly label: string;
    readonly converged: boolean;
    readonly rules: readonly string[];
    readonly ledger: LedgerState | undefined;
    readonly runtime: Runtime;
    readonly ruleLimit: number;
    readonly nextWeekAt: number | undefined;
  }): Promise<{ violations: string[]; writes: number; runs: number }> {
    const violations = week.converged ? this.check(week.label, week.rules, week.ledger, this.clock) : [];
    const writesBefore = this.harness.arm.writes;
    let runs = 0;
    const gap = (week.nextWeekAt ?? this.clock + 7 * 24 * HOUR) - this.clock;
    // The same draws every week whatever happens, so a seed always gives the same stream.
    const draws = Array.from({ length: 2 }, () => ({
      grant: this.random(),
      when: this.random(),
      ttl: this.random(),
      rule: this.random(),
    }));
    const revokeDraw = this.random();
    const ruleDraw = this.random();
    // Up to two grants a week, in time order: with 7-day grants, three can be active at once.
    const whens = draws.map((draw) => draw.when).sort((a, b) => a - b);
    for (const [i, draw] of draws.entries()) {
      if (gap <= 3 * HOUR || draw.grant >= this.options.grantShare) continue;
      const at = this.clock + HOUR + Math.floor((whens[i] ?? 0) * (gap - 2 * HOUR));
      this.setArmClock(at);
      // A quarter of the grants last the full 7 days, so they outlive the next weekly run.
      const ttl = draw.ttl < 0.25 ? MAX_TTL : Math.max(60_000, Math.floor((draw.ttl / 0.75 - 1 / 3) * MAX_TTL));
      const rule = `192.0.2.${Math.floor(draw.rule * 200) + 20}/32`;
      violations.push(...(await this.grant(week, rule, ttl, at)));
      runs += 1;
    }
    const now = this.harness.arm.now().getTime();
    const active = this.made.filter((grant) => !grant.revoked && grant.expiresAt > now);
    if (revokeDraw < this.options.revokeShare && active.length > 0) {
      const target = active[Math.floor(ruleDraw * active.length) % active.length];
      if (target !== undefined) {
        violations.push(...(await this.revoke(week, target)));
        runs += 1;
      }
    }
    this.setArmClock(this.clock);
    this.figures.maxActive = Math.max(
      this.figures.maxActive,
      this.made.filter((grant) => !grant.revoked && grant.expiresAt > this.clock).length,
    );
    return { violations, writes: this.harness.arm.writes - writesBefore, runs };
  }

  private async grant(
    week: { readonly label: string; readonly runtime: Runtime; readonly ruleLimit: number },
    rule: string,
    ttlMs: number,
    at: number,
  ): Promise<string[]> {
    this.figures.requested += 1;
    const id = createGrantId();
    const before = this.harness.arm.registry(this.registryIdOf(week.runtime)).ipRules;
    const [outcome] = await runInvocation(week.runtime.settings, week.runtime.ports, {
      mode: "apply",
      trigger: "replay-grant",
      actor: "cli:replay@grants",
      grant: { kind: "add", rule, ttlMs, reason: `replay grant ${id}`, grantedBy: "cli:replay@grants", id },
    });
    const after = this.harness.arm.registry(this.registryIdOf(week.runtime)).ipRules;
    const say = (message: string) => [`${week.label} grant of ${rule}: ${message}`];
    if (after.length > week.ruleLimit) return say(`${after.length} rules exceed the limit of ${week.ruleLimit}`);
    if (outcome === undefined) return say("no outcome");
    if (!outcome.ok) {
      if (!(outcome.error instanceof GrantRefusedError))
        return say(`failed: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`);
      this.figures.refused += 1;
      return sameRules(before, after) ? [] : say("refused, yet the registry changed");
    }
    const result = outcome.result;
    if (result.grant?.kind === "already-admitted") {
      this.figures.alreadyAdmitted += 1;
      return sameRules(before, after) ? [] : say("already admitted, yet the registry changed");
    }
    if (result.grant?.kind !== "added" || result.outcome !== "applied") return say(`ended ${result.outcome}`);
    this.figures.added += 1;
    const expiresAt = Date.parse(result.grant.grant.expiresAt);
    if (expiresAt !== at - (at % 1000) + ttlMs)
      return say(`expires at ${result.grant.grant.expiresAt}, not ttl after ARM's time`);
    this.made.push({ id: result.grant.grant.id, rule, expiresAt, revoked: false, removedSeen: false });
    return after.includes(rule) ? [] : say("applied, yet the rule is not on the registry");
  }

  private async revoke(week: { readonly label: string; readonly runtime: Runtime }, target: Made): Promise<string[]> {
    const [outcome] = await runInvocation(week.runtime.settings, week.runtime.ports, {
      mode: "apply",
      trigger: "replay-revoke",
      actor: "cli:replay@revoke",
      grant: { kind: "revoke", rule: target.rule, revokedBy: "cli:replay@revoke" },
    });
    const say = (message: string) => [`${week.label} revoke of ${target.rule}: ${message}`];
    if (outcome === undefined) return say("no outcome");
    if (!outcome.ok) return say(`failed: ${String(outcome.error)}`);
    target.revoked = true;
    this.figures.revoked += 1;
    return this.harness.arm.registry(this.registryIdOf(week.runtime)).ipRules.includes(target.rule)
      ? say("the rule is still on the registry")
      : [];
  }

  /** At a converged run: every grant past its expiry is gone, every other one is in place. */
  private check(label: string, rules: readonly string[], ledger: LedgerState | undefined, clock: number): string[] {
    const violations: string[] = [];
    const listed = new Set((ledger?.grants ?? []).map((grant) => grant.id));
    for (const grant of this.made) {
      if (grant.revoked) {
        if (listed.has(grant.id)) violations.push(`${label}: revoked grant ${grant.rule} is still in the ledger`);
        continue;
      }
      if (grant.expiresAt <= clock) {
        // The same address may have been granted again since: then its rule rightly stays.
        const regranted = this.made.some(
          (other) => other !== grant && !other.revoked && other.expiresAt > clock && other.rule === grant.rule,
        );
        if ((rules.includes(grant.rule) && !regranted) || listed.has(grant.id))
          violations.push(
            `${label}: grant ${grant.rule} expired at ${new Date(grant.expiresAt).toISOString()} and is still there after the run at ${new Date(clock).toISOString()}`,
          );
        else if (!grant.removedSeen) {
          grant.removedSeen = true;
          this.figures.expired += 1;
        }
      } else if (!rules.includes(grant.rule) || !listed.has(grant.id)) {
        violations.push(`${label}: active grant ${grant.rule} is missing from the registry or the ledger`);
      }
    }
    return violations;
  }

  private setArmClock(at: number): void {
    this.harness.arm.setClock(() => new Date(at));
  }

  private registryIdOf(runtime: Runtime): string {
    const target = runtime.settings.targets[0];
    if (target === undefined) throw new Error("the replay runtime has no target");
    return target.ref.id;
  }
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((rule, i) => rule === b[i]);
}
