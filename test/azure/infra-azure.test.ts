import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  at,
  infraDir,
  loadInfraFiles,
  modules,
  objectProperties,
  parameters,
  resources,
  variables,
  type BicepFile,
} from "../infra/bicep-ast.js";
import { evaluate, type BicepValue } from "./bicep-eval.js";

/** The infra facts of azure-facts §7, read from the templates' syntax trees. */

const files = loadInfraFiles();
const file = (name: string): BicepFile => {
  const found = files.find((f) => f.name === name);
  if (found === undefined) throw new Error(`infra/${name} is missing`);
  return found;
};
const main = file("main.bicep");
const mainVars = variables(main.root);
const role = resources(main.root).find((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@"));
const roleDeclaration = main.root
  .descendantsOfType("resource_declaration")
  .find((d) => d.text.includes("Microsoft.Authorization/roleDefinitions@"));

const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";

describe("an existing role definition instead of creating one", () => {
  it("declares registryRoleDefinitionId, empty by default, and azd maps it from a name azd never writes itself", () => {
    expect(stringDefault("registryRoleDefinitionId")).toBe("");
    const json = JSON.parse(readFileSync(join(infraDir(), "main.parameters.json"), "utf8")) as {
      parameters: Record<string, { value: unknown }>;
    };
    const variable = /^\$\{([A-Z_]+)=\}$/.exec(String(json.parameters.registryRoleDefinitionId?.value))?.[1];
    expect(variable).toBeDefined();
    // azd writes every output into the environment: an output of the same name would make the
    // next `azd provision` treat the role this template created as a pre-created one.
    const outputs = main.root.descendantsOfType("output_declaration").map((o) => o.namedChildren[0]?.text);
    expect(outputs).toContain("REGISTRY_ROLE_DEFINITION_ID");
    expect(outputs).not.toContain(variable);
  });

  it("creates the custom role only when no existing role is given", () => {
    expect(roleDeclaration?.namedChildren.some((c) => c.type === "if_statement")).toBe(true);
    const condition = roleDeclaration?.descendantsOfType("if_statement")[0]?.namedChildren[0];
    for (const [value, created] of [
      ["", true],
      ["/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/1234", false],
    ] as const) {
      expect(evaluate(condition, { params: new Map([["registryRoleDefinitionId", value]]), vars: mainVars })).toBe(
        created,
      );
    }
  });

  it("assigns the given role (its GUID) on every registry when one is given, and the created one otherwise", () => {
    const access = modules(main.root).find((m) => m.path === "registry-access.bicep");
    const guidNode = at(access?.body, "params", "roleDefinitionGuid");
    const given = evaluate(guidNode, {
      params: new Map([
        ["registryRoleDefinitionId", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/1234-abcd"],
      ]),
      vars: new Map([...mainVars].filter(([name]) => name !== "createdRoleGuid")),
    });
    expect(given).toBe("1234-abcd");
    expect(mainVars.get("registryRoleGuid")?.text).toContain("createdRoleGuid");
  });
});

describe("custom role name", () => {
  it("is unique per subscription and environment (role names are unique in the tenant)", () => {
    const name = at(role?.body, "properties", "roleName")?.text ?? "";
    expect(name).toContain("${environmentName}");
    expect(name).toContain("${subscription().subscriptionId}");
  });
});

describe("registry IDs with a trailing slash", () => {
  const alerts = file("alerts.bicep");
  const ids = (targetRegistries: string): BicepValue =>
    evaluate(mainVars.get("targetRegistryIds"), {
      params: new Map([["targetRegistries", targetRegistries]]),
      vars: mainVars,
    });

  it("give the same registry IDs, role scopes and alert scope as without", () => {
    expect(ids(`${REGISTRY}/`)).toEqual([REGISTRY]);
    expect(ids(` ${REGISTRY}/ ,${REGISTRY.replace("myreg", "other")}`)).toEqual([
      REGISTRY,
      REGISTRY.replace("myreg", "other"),
    ]);
    const names = evaluate(variables(alerts.root).get("expectedRegistryNames"), {
      params: new Map([["targetRegistryIds", ids(`${REGISTRY}/`)]]),
      vars: variables(alerts.root),
    });
    expect(names).toEqual(["myreg"]);
  });
});

describe("telemetry per cloud", () => {
  const app = file("app.bicep");
  const appVars = variables(app.root);

  it("keeps Entra ingestion (local auth disabled) to the public cloud, where it is documented", () => {
    expect(appVars.get("entraIngestion")?.text).toBe("environment().name == 'AzureCloud'");
  });

  it("carries each cloud's Azure Monitor audience in the connection string", () => {
    const audiences = objectProperties(appVars.get("monitorAudiences"));
    expect(
      Object.fromEntries(
        [...audiences].map(([cloud, node]) => [cloud, evaluate(node, { params: new Map(), vars: appVars })]),
      ),
    ).toEqual({
      AzureCloud: "https://monitor.azure.com",
      AzureUSGovernment: "https://monitor.azure.us",
      AzureChinaCloud: "https://monitor.azure.cn",
    });
    expect(app.text).toContain("AADAudience=${monitorAudience}/.default");
  });
});

function stringDefault(name: string): string | undefined {
  const param = parameters(main.root).get(name);
  return param?.defaultValue === undefined
    ? undefined
    : String(evaluate(param.defaultValue, { params: new Map(), vars: new Map() }));
}
