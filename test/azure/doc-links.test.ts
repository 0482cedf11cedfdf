import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../support/paths.js";

/** Files the shipped text points at exist in the repository (a fresh clone has no ../shared). */

const root = projectRoot();

function filesUnder(folder: string, suffixes: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, suffixes));
    else if (suffixes.some((s) => entry.name.endsWith(s))) out.push(path);
  }
  return out;
}

const shipped = ["README.md", "host.json", ...filesUnder("infra", [".bicep", ".json"]), ...filesUnder("src", [".ts"])];

describe("links to files", () => {
  it("name only docs/ files that exist", () => {
    const missing: string[] = [];
    for (const file of shipped) {
      const text = readFileSync(join(root, file), "utf8");
      for (const match of text.matchAll(/\bdocs\/[\w./-]+\.md\b/g))
        if (!existsSync(join(root, match[0]))) missing.push(`${file}: ${match[0]}`);
    }
    expect(missing).toEqual([]);
  });

  it("in the README point at files that exist", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const targets = [...readme.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)].map((m) => m[1] ?? "");
    expect(targets.filter((t) => !existsSync(join(root, t))).map((t) => relative(root, join(root, t)))).toEqual([]);
  });
});
