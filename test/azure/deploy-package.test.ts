import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../support/paths.js";

/**
 * The Flex Consumption remote build runs `npm install` with devDependencies, `npm run build`,
 * then `npm run build:azure` when it exists, and prunes nothing by itself (azure-facts §7).
 * `npm run package:check` (run by .ci/run, about two minutes) builds the package that way and
 * fails if a dev-only package is left; these checks keep the wiring in place.
 */

const root = projectRoot();
const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> })
  .scripts;

describe("the deployment package", () => {
  it("prunes the devDependencies in build:azure, after the remote build compiled with them", () => {
    expect(scripts["build:azure"]).toMatch(/^npm prune --omit=dev\b/);
    expect(scripts.build).not.toMatch(/prune/);
  });

  it("is built and checked as the deploy builds it by a script CI runs", () => {
    expect(scripts["package:check"]).toContain("dist/scripts/package-check.js");
    expect(readFileSync(join(root, ".ci", "run"), "utf8")).toMatch(/^npm run package:check$/m);
  });
});
