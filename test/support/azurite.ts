import { spawn, type ChildProcess } from "node:child_process";
import { realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./paths.js";

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
  readonly connectionString: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** A folder for on-disk persistence; default in memory (Azurite refuses both at once). */
  readonly location?: string;
  /** How long to wait for Azurite to listen. Default 30 s. */
  readonly startTimeoutMs?: number;
}

/**
 * Starts the blob service of the installed Azurite on 127.0.0.1 with a port the OS picks, and
 * resolves when it listens. Spawned as `node <azurite-blob main>` (not npx) in its own process
 * group, so `stop()` can end exactly it and nothing is left running.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<Azurite> {
  const script = realpathSync(join(projectRoot(), "node_modules", ".bin", "azurite-blob"));
  const args = [
    script,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    "0",
    "--silent",
    "--skipApiVersionCheck",
    // Azurite collects telemetry by default; tests must not talk to anything but loopback.
    "--disableTelemetry",
    ...(options.location === undefined
      ? ["--inMemoryPersistence", "--extentMemoryLimit", "256"]
      : ["--location", options.location]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: options.location ?? tmpdir(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("Azurite did not start (no pid).");
  let port: number;
  try {
    port = await waitForPort(child, options.startTimeoutMs ?? 30_000);
  } catch (error) {
    await stopProcess(child, pid);
    throw error;
  }
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    pid,
    stop: () => stopProcess(child, pid),
  };
}

function waitForPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      finish(new Error(`Azurite did not listen within ${timeoutMs} ms. Output: ${output.slice(-2000)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString("utf8");
      const match = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match?.[1] !== undefined) finish(undefined, Number(match[1]));
    };
    const onExit = (code: number | null, signal: string | null): void => {
      finish(
        new Error(
          `Azurite exited before listening (code ${String(code)}, signal ${String(signal)}). Output: ${output.slice(-2000)}`,
        ),
      );
    };
    const finish = (error: Error | undefined, port?: number): void => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      // Keep draining the pipes so Azurite never blocks on a full one.
      child.stdout?.resume();
      child.stderr?.resume();
      if (error !== undefined || port === undefined) reject(error ?? new Error("Azurite did not report its port."));
      else resolve(port);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
}

async function stopProcess(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      resolve();
    }),
  );
  signalGroup(pid, "SIGTERM");
  const timer = setTimeout(() => {
    signalGroup(pid, "SIGKILL");
  }, 5_000);
  await exited;
  clearTimeout(timer);
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // A negative pid signals the whole group the detached child leads.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
