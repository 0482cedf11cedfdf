import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { APP_SETTINGS } from "../../src/config/settings.js";
import { projectRoot } from "../support/paths.js";

const readme = readFileSync(`${projectRoot()}/README.md`, "utf8");
const packageJson = JSON.parse(readFileSync(`${projectRoot()}/package.json`, "utf8")) as {
  scripts: Record<string, string>;
};

describe("the README", () => {
  it("opens with a two-command quick start whose scripts exist", () => {
    const quickStart = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("## How it works"));
    expect(quickStart).toContain("npm ci && npm run demo");
    expect(quickStart).toContain("npm ci && npm test");
    expect(packageJson.scripts.demo).toBeDefined();
    expect(packageJson.scripts.test).toBe("vitest run");
  });

  it("documents every setting the code reads in the configuration table", () => {
    for (const setting of APP_SETTINGS) expect(readme, setting.name).toContain(`| \`${setting.name}\``);
  });

  it("names only test files that exist as the holders of its promises", () => {
    const section = readme.slice(readme.indexOf("## Ownership and safety"), readme.indexOf("## Operations"));
    const paths = [...section.matchAll(/`(test\/[^`]+)`/g)].map((match) => match[1] ?? "");
    expect(paths.length).toBeGreaterThan(10);
    for (const path of paths) expect(existsSync(`${projectRoot()}/${path}`), path).toBe(true);
  });
});
