import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CANARY_ACTIONS } from "../../src/registry/arm-errors.js";
import { EVENT_NAMES } from "../../src/telemetry/types.js";
import {
  arrayItems,
  at,
  callArguments,
  callName,
  infraDir,
  loadInfraFiles,
  modules,
  parameters,
  resolve,
  resources,
  stringLiteral,
  stringText,
  variables,
} from "./bicep-ast.js";

/**
 * The canary's infra: its run permissions in a role of their own, assigned only on the registries
 * a canary runs on; dedicated canary registries synced (firewall role) like targets; the settings,
 * the alert on a refusal with the diagnosis in its dimensions, and the workbook tile.
 */

const files = loadInfraFiles();
const main = files.find((f) => f.name === "main.bicep");
if (main === undefined) throw new Error("infra/main.bicep is missing");
const vars = variables(main.root);
const roles = resources(main.root).filter((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@"));
const canaryRole = roles.find((r) => at(r.body, "properties", "roleName")?.text.includes("canary runner") === true);
const firewallRole = roles.find((r) => r !== canaryRole);
const actionsOf = (role: typeof canaryRole): string[] =>
  arrayItems(resolve(at(arrayItems(at(role?.body, "properties", "permissions"))[0], "actions"), vars)).map(
    (n) => stringLiteral(n) ?? n.text,
  );
const loopSource = (symbol: string): string | undefined => {
  const declaration = main.root
    .descendantsOfType("module_declaration")
    .find((d) => d.namedChildren[0]?.text === symbol);
  const loop = declaration?.namedChildren.at(-1);
  // `[for (id, i) in <source>: {...}]`: the identifier after the loop parameters.
  return loop?.type === "for_statement" ? loop.namedChildren.find((c) => c.type === "identifier")?.text : undefined;
};

describe("canary permissions", () => {
  it("puts exactly the three run actions in a role of their own", () => {
    expect(canaryRole).toBeDefined();
    expect(actionsOf(canaryRole).sort()).toEqual([...CANARY_ACTIONS].sort());
  });

  it("never gives the firewall role, which every target gets, the right to run tasks", () => {
    const firewallText = resolve(
      at(arrayItems(at(firewallRole?.body, "properties", "permissions"))[0], "actions"),
      vars,
    );
    const concatenated = callName(firewallText) === "concat" ? callArguments(firewallText) : [];
    const actions = concatenated.flatMap((part) => arrayItems(resolve(part, vars)).map((n) => stringLiteral(n) ?? ""));
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((action) => /scheduleRun|\/runs\//.test(action))).toEqual([]);
  });

  it("assigns the canary role only on canary registries: the dedicated ones and the opted-in targets", () => {
    const access = modules(main.root).filter((m) => m.path === "registry-access.bicep");
    expect(access.map((m) => m.symbol).sort()).toEqual(["canaryAccess", "registryAccess"]);
    expect(loopSource("canaryAccess")).toBe("canaryRunnerIds");
    expect(vars.get("canaryRunnerIds")?.text).toBe("union(canaryRegistryIds, canaryOnTargetIds)");
    // Dedicated canary registries are synced like targets, so they get the firewall role as well.
    expect(loopSource("registryAccess")).toBe("syncedRegistryIds");
    expect(vars.get("syncedRegistryIds")?.text).toBe("union(targetRegistryIds, canaryRegistryIds)");
    const canaryAccess = access.find((m) => m.symbol === "canaryAccess");
    expect(at(canaryAccess?.body, "params", "roleDefinitionGuid")?.text).toBe(at(canaryRole?.body, "name")?.text);
  });

  it("creates the canary role only when some registry runs a canary", () => {
    const declaration = main.root
      .descendantsOfType("resource_declaration")
      .find((d) => d.namedChildren[0]?.text === "canaryRole");
    expect(declaration?.namedChildren.at(-1)?.type).toBe("if_statement");
  });

  it("takes the canary registries as parameters that default to none", () => {
    const declared = parameters(main.root);
    expect(stringLiteral(declared.get("canaryRegistries")?.defaultValue)).toBe("");
    expect(stringLiteral(declared.get("canaryOnTargets")?.defaultValue)).toBe("");
    const json = JSON.parse(readFileSync(join(infraDir(), "main.parameters.json"), "utf8")) as {
      parameters: Record<string, { value: string }>;
    };
    expect(json.parameters.canaryRegistries?.value).toBe("${CANARY_REGISTRIES=}");
  });
});

describe("canary alert and workbook", () => {
  const alerts = files.find((f) => f.name === "alerts.bicep");
  const rule = resources(alerts?.root ?? main.root).find((r) => r.symbol === "canaryRefusedAlert");

  it("alerts on a refused canary only, with the refused IP and the diagnosis as dimensions", () => {
    const criterion = arrayItems(at(rule?.body, "properties", "criteria", "allOf"))[0];
    const query = stringText(at(criterion, "query"), variables(alerts?.root ?? main.root)) ?? "";
    expect(query).toContain(`name == "${EVENT_NAMES.canaryCompleted}"`);
    expect(query).toContain('tostring(customDimensions.verdict) == "refused"');
    const dimensions = arrayItems(at(criterion, "dimensions")).map((d) => stringLiteral(at(d, "name")));
    expect(dimensions).toEqual(["registry", "refusedIp", "advice"]);
    expect(stringLiteral(at(rule?.body, "properties", "description"))).toMatch(/diagnosis/);
  });

  it("shows the last canary result per registry in the workbook", () => {
    const workbook = JSON.parse(readFileSync(join(infraDir(), "workbook.json"), "utf8")) as {
      items: { name?: string; content?: { query?: string } }[];
    };
    const tile = workbook.items.find((item) => item.name === "canary");
    expect(tile?.content?.query).toContain(EVENT_NAMES.canaryCompleted);
    expect(tile?.content?.query).toContain("customDimensions.advice");
  });
});
