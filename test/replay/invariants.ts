import type { LedgerState } from "../../src/ledger/types.js";
import { formatPrefix, parsePrefix, prefixContains, type Prefix } from "../../src/prefixes/ipv4.js";

/**
 * The properties that must hold on the registry and the ledger after every replayed week, checked
 * from the outside (emulator state, ledger contents, the week's file), never from the plan the
 * service reports about itself. Each function returns the violations as sentences; empty = fine.
 */

export interface WeekState {
  readonly label: string;
  /** The IPv4 prefixes of the selected tags in the week's file; undefined when a selected tag is missing. */
  readonly selected: readonly string[] | undefined;
  /** The week's final run succeeded (applied or unchanged), so the registry must be in sync. */
  readonly converged: boolean;
  readonly rulesBefore: readonly string[];
  readonly rulesAfter: readonly string[];
  readonly ruleLimit: number;
  readonly peopleRules: readonly string[];
  /** PATCH requests the registry received during the week. */
  readonly patches: number;
  /** PATCHes the registry applied during the week. */
  readonly writes: number;
  /** The selection equals the one of the last week the registry converged to. */
  readonly selectionUnchanged: boolean;
  readonly ledger: LedgerState | undefined;
}

export function checkWeek(week: WeekState): string[] {
  const violations: string[] = [];
  const say = (message: string): void => {
    violations.push(`${week.label}: ${message}`);
  };
  violations.push(...peopleAndLimit(week.label, week.rulesAfter, week.peopleRules, week.ruleLimit));
  if (week.writes > 1) say(`${week.writes} writes in one week: a week's change takes one PATCH`);

  if (week.converged) {
    if (week.selected === undefined) say("the run succeeded although a selected tag is missing from the file");
    const rules = parsedRules(week.rulesAfter);
    for (const text of week.selected ?? []) {
      const prefix = parsePrefix(text, { mode: "strict" }).prefix;
      if (!rules.some((rule) => prefixContains(rule, prefix)))
        say(`the selected prefix ${text} is not covered by any rule`);
    }
    if (week.selectionUnchanged && week.patches > 0)
      say(`the selection did not change, yet ${week.patches} PATCH request(s) were sent`);
  } else if (!sameList(week.rulesBefore, week.rulesAfter)) {
    say("the week did not converge (guard or failure), yet the registry's rules changed");
  }

  const ours = withoutPeople(week.rulesAfter, week.peopleRules);
  if (week.ledger === undefined) {
    if (ours.length > 0) say(`no ledger, yet the registry holds ${ours.length} rule(s) that are not people's`);
  } else {
    if (week.converged && week.ledger.pendingRules.length > 0)
      say(`the ledger still has ${week.ledger.pendingRules.length} pending rule(s) after a successful run`);
    const owned = canonicalSet(week.ledger.ownedRules);
    const onRegistry = canonicalSet(ours);
    if (!sameSet(owned, onRegistry)) {
      const missing = [...onRegistry].filter((rule) => !owned.has(rule));
      const extra = [...owned].filter((rule) => !onRegistry.has(rule));
      say(
        `the ledger's owned rules differ from the registry's rules minus people's (not in ledger: ${missing.join(" ") || "-"}; not on registry: ${extra.join(" ") || "-"})`,
      );
    }
  }
  return violations;
}

/**
 * What must hold even when a run fails: people's rules intact, the limit respected, and the
 * registry either as it was or exactly as the next clean run leaves it (never half-written).
 */
export function checkFailedAttempt(options: {
  readonly label: string;
  readonly before: readonly string[];
  readonly afterAttempt: readonly string[];
  readonly afterCleanRun: readonly string[];
  readonly peopleRules: readonly string[];
  readonly ruleLimit: number;
}): string[] {
  const violations = peopleAndLimit(
    `${options.label} (faulty run)`,
    options.afterAttempt,
    options.peopleRules,
    options.ruleLimit,
  );
  if (!sameList(options.afterAttempt, options.before) && !sameList(options.afterAttempt, options.afterCleanRun)) {
    violations.push(
      `${options.label}: the faulty run left the registry neither unchanged nor converged (partial write)`,
    );
  }
  return violations;
}

function peopleAndLimit(
  label: string,
  rules: readonly string[],
  peopleRules: readonly string[],
  ruleLimit: number,
): string[] {
  const violations: string[] = [];
  if (rules.length > ruleLimit) violations.push(`${label}: ${rules.length} rules exceed the limit of ${ruleLimit}`);
  const present = new Set(rules);
  for (const rule of peopleRules)
    if (!present.has(rule)) violations.push(`${label}: the person's rule '${rule}' is gone or changed`);
  return violations;
}

/** The registry's rules without people's (each exact value removed once). */
export function withoutPeople(rules: readonly string[], peopleRules: readonly string[]): string[] {
  const people = new Set(peopleRules);
  return rules.filter((rule) => !people.has(rule));
}

function parsedRules(rules: readonly string[]): Prefix[] {
  return rules.map((rule) => parsePrefix(rule, { mode: "lenient" }).prefix);
}

function canonicalSet(rules: readonly string[]): Set<string> {
  return new Set(rules.map((rule) => formatPrefix(parsePrefix(rule, { mode: "lenient" }).prefix)));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((value) => b.has(value));
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
