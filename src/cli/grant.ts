import { createRuntime, type Runtime } from "../app/runtime.js";
import { findTarget } from "../config/targets.js";
import type { TargetConfig } from "../config/settings.js";
import { UsageError } from "../errors.js";
import type { GrantChange, GrantOutcome } from "../grants/change.js";
import { lookUpMyIp } from "../grants/my-ip.js";
import { parseGrantReason, parseGrantRule, parseTtl } from "../grants/request.js";
import { runInvocation } from "../sync/invocation.js";
import { createGrantId } from "../sync/run.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, type EnvelopeResult } from "./envelope.js";
import { envOf, message } from "./output.js";
import { resultOf } from "./plan-apply.js";
import {
  cliActor,
  HELP_FLAG,
  JSON_FLAG,
  parseRegistryCommand,
  registryCommandHelp,
  settingFlags,
  STATE_FLAG,
  writeWarnings,
  type ParsedRegistryCommand,
  type RegistryCommandSpec,
} from "./registry-flags.js";
import { printResults } from "./report.js";

/**
 * `grant` and `revoke`: one run of the registry (the service tags are fetched, the same guards
 * apply, one PATCH, people's rules untouched) whose plan also adds or ends one temporary grant.
 * The envelope's result carries `grant`: what became of it.
 */

const GRANT: RegistryCommandSpec = {
  name: "grant",
  synopsis:
    "grant --registry <resource ID> --ip <a.b.c.d[/n] | me> --ttl <duration> --reason <text> [--allow-wide] [--state <file|blob>] [--json]",
  description:
    "Allow one address or prefix until the grant expires (at most 7 days): one PATCH now, and the first run at or after the expiry (timer or apply) removes it. The rule takes one rule of the service-tag budget while it lasts; with no room left the grant is refused, naming the figures.",
  flags: [
    ...settingFlags(),
    STATE_FLAG,
    {
      name: "ip",
      type: "string",
      value: "a.b.c.d[/n] | me",
      help: "The address or prefix to allow; 'me' asks GRANT_MY_IP_URL for this machine's public address and shows it first.",
    },
    { name: "ttl", type: "string", value: "duration", help: "How long: 30m, 8h, 2d, 1d12h; at most 7d." },
    { name: "reason", type: "string", value: "text", help: "Why, recorded with the grant and sent to telemetry." },
    { name: "allow-wide", type: "boolean", help: "Allow a prefix shorter than /24 (more than 256 addresses)." },
    JSON_FLAG,
    HELP_FLAG,
  ],
};

const REVOKE: RegistryCommandSpec = {
  name: "revoke",
  synopsis: "revoke --registry <resource ID> --ip <a.b.c.d[/n]> [--state <file|blob>] [--json]",
  description:
    "End an active grant now: one PATCH removes its rule (same guards, people's rules untouched). 'acr-allowlist-sync grants' lists them.",
  flags: [
    ...settingFlags(),
    STATE_FLAG,
    { name: "ip", type: "string", value: "a.b.c.d[/n]", help: "The rule of the grant to end, as 'grants' shows it." },
    JSON_FLAG,
    HELP_FLAG,
  ],
};

function requiredText(parsed: ParsedRegistryCommand, name: string, command: string, example: string): string {
  const value = parsed.values[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`${command} needs --${name}.`, {
      details: { flag: `--${name}` },
      remedy: `Example: ${example}; run 'acr-allowlist-sync ${command} --help' for every flag.`,
    });
  }
  return value;
}

function targetOf(runtime: Runtime, parsed: ParsedRegistryCommand): TargetConfig {
  return findTarget(
    runtime.settings.targets,
    typeof parsed.values.registry === "string" ? parsed.values.registry : undefined,
  );
}

/** One line on what became of the grant, for people (scripts read `grant` in the envelope). */
function grantLine(grant: GrantOutcome | undefined): string | undefined {
  switch (grant?.kind) {
    case undefined:
      return undefined;
    case "added":
      return `Granted ${grant.grant.rule} until ${grant.grant.expiresAt} (grant ${grant.grant.id}); the first run after that removes it.`;
    case "revoked":
      return `Revoked the grant of ${grant.grant.rule} (made by ${grant.grant.grantedBy}).`;
    case "already-admitted":
      return `Nothing written: ${grant.rule} is already admitted by ${
        grant.by === "people"
          ? `a person's rule ${grant.byRule}`
          : grant.by === "grant"
            ? `the grant of ${grant.byRule}${grant.grant === undefined ? "" : ` until ${grant.grant.expiresAt}`}`
            : grant.by === "pinned"
              ? `the pinned rule ${grant.byRule}`
              : `the current service-tag cover (${grant.byRule})`
      }.`;
  }
}

async function change(
  spec: RegistryCommandSpec,
  parsed: ParsedRegistryCommand,
  runtime: Runtime,
  target: TargetConfig,
  grant: GrantChange,
  io: CliIO,
): Promise<number> {
  const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
    mode: "apply",
    trigger: "cli",
    actor: cliActor(),
    targets: [target],
    grant,
  });
  if (outcome === undefined) throw new Error("runInvocation returned no outcome");
  // Revoking a grant that does not exist is the caller's mistake (exit 2), like an unknown audit id.
  if (!outcome.ok && outcome.error instanceof UsageError) throw outcome.error;
  const base = resultOf(outcome);
  const decided = outcome.ok ? outcome.result.grant : undefined;
  const result: EnvelopeResult = { ...base, grant: decided ?? null };
  const value = envelope(spec.name, [result]);
  printResults(io, value, { json: parsed.values.json === true, footer: () => grantLine(decided) });
  return exitCodeOf(value);
}

async function grant(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(GRANT, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(GRANT));
    return 0;
  }
  const example = `grant --registry myreg --ip me --ttl 8h --reason "incident 4711: portal access"`;
  const ipText = requiredText(parsed, "ip", "grant", example);
  const ttlMs = parseTtl(requiredText(parsed, "ttl", "grant", example));
  const reason = parseGrantReason(requiredText(parsed, "reason", "grant", example));
  writeWarnings(io.stderr, parsed.warnings);
  const runtime = createRuntime(parsed.env, { ledger: parsed.ledger });
  const target = targetOf(runtime, parsed);
  let address = ipText;
  if (ipText.trim().toLowerCase() === "me") {
    address = await lookUpMyIp({ url: runtime.settings.grants.myIpUrl, timeoutMs: 10_000 });
    // Shown before it is used: the person sees what is about to be allowed, also with --json (on stderr).
    message(io.stderr, `${runtime.settings.grants.myIpUrl} says this machine's public address is ${address}.`);
  }
  const rule = parseGrantRule(address, {
    allowWide: parsed.values["allow-wide"] === true,
    minPrefixLength: target.policy.minPrefixLength,
  });
  return change(
    GRANT,
    parsed,
    runtime,
    target,
    { kind: "add", rule, ttlMs, reason, grantedBy: cliActor(), id: createGrantId() },
    io,
  );
}

async function revoke(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(REVOKE, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(REVOKE));
    return 0;
  }
  const ipText = requiredText(parsed, "ip", "revoke", "revoke --registry myreg --ip 203.0.113.7");
  writeWarnings(io.stderr, parsed.warnings);
  const runtime = createRuntime(parsed.env, { ledger: parsed.ledger });
  const target = targetOf(runtime, parsed);
  // Any width: the grant exists already, so it names it as 'grants' shows it.
  const rule = parseGrantRule(ipText, { allowWide: true, minPrefixLength: 0 });
  return change(REVOKE, parsed, runtime, target, { kind: "revoke", rule, revokedBy: cliActor() }, io);
}

export const grantCommand: Subcommand = {
  name: "grant",
  summary: "Allow an address until a grant expires (at most 7 days); the next run after that removes it.",
  usage: registryCommandHelp(GRANT),
  envelope: true,
  run: grant,
};

export const revokeCommand: Subcommand = {
  name: "revoke",
  summary: "End a temporary grant now (one PATCH).",
  usage: registryCommandHelp(REVOKE),
  envelope: true,
  run: revoke,
};
