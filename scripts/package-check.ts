import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../test/support/paths.js";

/**
 * Builds the deployment package the way the Flex Consumption remote build does (azure-facts §7):
 * the files `.funcignore` lets through, `npm ci` WITH devDependencies, `npm run build`, then
 * `npm run build:azure` (which must prune the devDependencies), in a temporary folder. Reports
 * the package's size and fails when a dev-only package is left in node_modules or the built
 * entry files do not load with plain Node. Run by `.ci/run`; takes a minute or two (npm ci).
 */

interface LockPackage {
  readonly dev?: boolean;
}

const root = projectRoot();
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function ignoredByFuncignore(): (name: string) => boolean {
  const patterns = readFileSync(join(root, ".funcignore"), "utf8")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.replace(/\/$/, ""));
  return (name) =>
    name === ".git" ||
    patterns.some((p) => (p.startsWith("*.") ? name.endsWith(p.slice(1)) : p === name || p === `${name}/`));
}

function sizeOf(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + sizeOf(join(path, entry)), 0);
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function run(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): void {
  execFileSync(command, args, { cwd, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } });
}

function main(): void {
  const work = mkdtempSync(join(tmpdir(), "acr-allowlist-sync-package-"));
  try {
    const ignored = ignoredByFuncignore();
    const uploaded = readdirSync(root).filter((name) => !ignored(name));
    for (const name of uploaded) cpSync(join(root, name), join(work, name), { recursive: true });
    process.stdout.write(`uploaded (after .funcignore): ${uploaded.join(", ")}\n`);

    run(npm, ["ci", "--no-audit", "--no-fund", "--prefer-offline"], work);
    const withDev = sizeOf(join(work, "node_modules"));
    run(npm, ["run", "build", "--silent"], work);
    const scripts = (
      JSON.parse(readFileSync(join(work, "package.json"), "utf8")) as { scripts?: Record<string, string> }
    ).scripts;
    if (scripts?.["build:azure"] === undefined) throw new Error("package.json has no build:azure script");
    run(npm, ["run", "build:azure", "--silent"], work);

    const lock = JSON.parse(readFileSync(join(work, "package-lock.json"), "utf8")) as {
      packages: Record<string, LockPackage>;
    };
    const devLeft = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.dev === true && existsSync(join(work, path)))
      .map(([path]) => path.replace(/^node_modules\//, ""));

    run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { readdirSync } from "node:fs"; import { pathToFileURL } from "node:url"; for (const f of readdirSync("dist/src/functions").filter((f) => f.endsWith(".js"))) await import(pathToFileURL("dist/src/functions/" + f).href); console.log("entry files load without devDependencies");',
      ],
      work,
      // The settings the entry files validate when they load (as in the CI smoke step).
      {
        TARGET_REGISTRIES:
          "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/smokereg",
        AzureWebJobsStorage: "UseDevelopmentStorage=true",
      },
    );

    const total = sizeOf(work);
    const modules = sizeOf(join(work, "node_modules"));
    process.stdout.write(
      `deploy package: ${mb(total)} (node_modules ${mb(modules)}; ${mb(withDev)} before build:azure), dev-only packages left: ${devLeft.length}\n`,
    );
    if (devLeft.length > 0) {
      process.stderr.write(`dev-only packages still in the package: ${devLeft.slice(0, 20).join(", ")}\n`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main();
