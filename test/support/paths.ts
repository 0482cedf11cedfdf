import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The repository root, found by walking up to package.json. The support code runs both from
 * `test/support` (vitest) and from `dist/test/support` (the built demo), so relative URLs won't do.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export function fixturePath(...parts: string[]): string {
  return join(projectRoot(), "test", "fixtures", ...parts);
}
