import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { APP_SETTINGS, loadSettings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";
import { LEAST_PRIVILEGE_ACTIONS } from "../../src/registry/arm-errors.js";
import {
  arrayItems,
  at,
  callArguments,
  infraDir,
  loadInfraFiles,
  modules,
  resources,
  resolve,
  variables,
} from "../infra/bicep-ast.js";
import { evaluate, parameterType, type BicepValue } from "./bicep-eval.js";

/**
 * One rule for every boolean setting, in the code and in the infra: the app setting and the
 * custom role are computed from the same `bool` parameter, and whatever string Bicep writes into
 * the app setting, the code must decide exactly what the role decided.
 */

const ID =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
const REPLICAS_ACTION = "Microsoft.ContainerRegistry/registries/replications/read";

const mainFile = loadInfraFiles().find((f) => f.name === "main.bicep");
if (mainFile === undefined) throw new Error("infra/main.bicep is missing");
const main = mainFile;
const vars = variables(main.root);
const appModule = modules(main.root).find((m) => m.path === "app.bicep");
const syncAppSettings = at(appModule?.body, "params", "syncAppSettings");
const booleanSettings = APP_SETTINGS.filter((s) => s.boolean === true);

/** The parameter an app setting's expression reads (the identifiers it mentions that are parameters). */
function parameterOf(setting: string): string {
  const node = at(syncAppSettings, setting);
  if (node === undefined) throw new Error(`main.bicep does not set ${setting}`);
  const names = [...new Set(node.descendantsOfType("identifier").map((i) => i.text))];
  const params = names.filter((name) => parameterType(main.root, name) !== undefined);
  if (params.length !== 1) throw new Error(`${setting} depends on ${params.length} parameters: ${names.join(", ")}`);
  return params[0] ?? "";
}

function appSettingFor(setting: string, params: ReadonlyMap<string, BicepValue>): BicepValue {
  return evaluate(at(syncAppSettings, setting), { params, vars });
}

/** The actions of the custom role main.bicep creates, for the given parameter values. */
function roleActions(params: ReadonlyMap<string, BicepValue>): string[] {
  const role = resources(main.root).find((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@"));
  const permissions = arrayItems(resolve(at(role?.body, "properties", "permissions"), vars));
  const actions = resolve(at(permissions[0], "actions"), vars);
  // concat(a, b, ...) of arrays
  const parts = callArguments(actions).map((argument) => evaluate(argument, { params, vars }));
  return parts.flat().map(String);
}

describe("boolean settings", () => {
  it("are the two settings the README calls true/false, each with a bool parameter in main.bicep", () => {
    expect(booleanSettings.map((s) => s.name).sort()).toEqual(
      ["SYNC_INCLUDE_REPLICAS", "SYNC_WRITE_WHEN_DEFAULT_ALLOW"].sort(),
    );
    for (const setting of booleanSettings) expect(parameterType(main.root, parameterOf(setting.name))).toBe("bool");
  });

  it.each(booleanSettings.map((s) => [s.name] as const))(
    "%s: every value Bicep can write is read by the code as the parameter says",
    (name) => {
      const param = parameterOf(name);
      for (const value of [true, false]) {
        const written = appSettingFor(name, new Map([[param, value]]));
        expect(typeof written, `${name} for ${param}=${value}`).toBe("string");
        const settings = loadSettings({ TARGET_REGISTRIES: ID, [name]: String(written) });
        const target = settings.targets[0];
        const decided =
          name === "SYNC_INCLUDE_REPLICAS" ? target?.includeReplicas : target?.policy.writeWhenDefaultAllow;
        expect(decided, `${name}=${String(written)}`).toBe(value);
      }
    },
  );

  it("SYNC_INCLUDE_REPLICAS: the code lists replicas exactly when the role grants replications/read", () => {
    const param = parameterOf("SYNC_INCLUDE_REPLICAS");
    for (const value of [true, false]) {
      const params = new Map([[param, value]]);
      const actions = roleActions(params);
      const written = String(appSettingFor("SYNC_INCLUDE_REPLICAS", params));
      const includeReplicas = loadSettings({ TARGET_REGISTRIES: ID, SYNC_INCLUDE_REPLICAS: written }).targets[0]
        ?.includeReplicas;
      expect(actions.includes(REPLICAS_ACTION), `role for ${param}=${value}`).toBe(includeReplicas);
      expect(actions.every((a) => (LEAST_PRIVILEGE_ACTIONS as readonly string[]).includes(a))).toBe(true);
    }
  });

  it.each(booleanSettings.map((s) => [s.name] as const))(
    "%s accepts true and false in any letter case (ARM's string() writes True and False)",
    (name) => {
      for (const [text, expected] of [
        ["true", true],
        ["True", true],
        ["TRUE", true],
        [" false ", false],
        ["False", false],
      ] as const) {
        const target = loadSettings({ TARGET_REGISTRIES: ID, [name]: text }).targets[0];
        const decided =
          name === "SYNC_INCLUDE_REPLICAS" ? target?.includeReplicas : target?.policy.writeWhenDefaultAllow;
        expect(decided, text).toBe(expected);
      }
    },
  );

  it.each(
    booleanSettings.flatMap((s) => ["1", "0", "yes", "no", "on", "y", "tru", "truee"].map((v) => [s.name, v] as const)),
  )("%s=%s is a configuration error that names the setting", (name, value) => {
    let error: unknown;
    try {
      loadSettings({ TARGET_REGISTRIES: ID, [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).details.setting).toBe(name);
    expect((error as ConfigError).message).toContain(name);
    expect((error as ConfigError).message).toContain("expected true or false");
  });

  it("azd passes each boolean from an environment value with a false default", () => {
    const json = JSON.parse(readFileSync(join(infraDir(), "main.parameters.json"), "utf8")) as {
      parameters: Record<string, { value: unknown }>;
    };
    for (const setting of booleanSettings) {
      const param = parameterOf(setting.name);
      expect(json.parameters[param]?.value, param).toBe(`\${${setting.name}=false}`);
    }
  });
});
