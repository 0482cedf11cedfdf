import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./paths.js";

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` when the queue service was asked for. */
  readonly queueEndpoint: string | undefined;
  /** Blob (and queue) endpoints with the development account's key. */
  readonly connectionString: string;
  readonly pid: number;
  readonly queuePid: number | undefined;
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** A folder for on-disk persistence; default in memory (Azurite refuses both at once). */
  readonly location?: string;
  /** How long to wait for Azurite to listen. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Also start the queue service (its own process, its own port), e.g. for the fan-out tests. */
  readonly queue?: boolean;
}

/**
 * Starts the blob service of the installed Azurite on 127.0.0.1 with a port the OS picks, and
 * resolves when it listens. Spawned as `node <azurite-blob main>` (not npx) in its own process
 * group, so `stop()` can end exactly it and nothing is left running.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<Azurite> {
  const blob = await startService("blob", options);
  let queue: Service | undefined;
  try {
    queue = options.queue === true ? await startService("queue", options) : undefined;
  } catch (error) {
    await blob.stop();
    throw error;
  }
  const blobEndpoint = `http://127.0.0.1:${blob.port}/${AZURITE_ACCOUNT}`;
  const queueEndpoint = queue === undefined ? undefined : `http://127.0.0.1:${queue.port}/${AZURITE_ACCOUNT}`;
  return {
    blobEndpoint,
    queueEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};${queueEndpoint === undefined ? "" : `QueueEndpoint=${queueEndpoint};`}`,
    pid: blob.pid,
    queuePid: queue?.pid,
    stop: async () => {
      await Promise.all([blob.stop(), queue?.stop()]);
    },
  };
}

interface Service {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startService(service: "blob" | "queue", options: StartAzuriteOptions): Promise<Service> {
  const script = realpathSync(join(projectRoot(), "node_modules", ".bin", `azurite-${service}`));
  // The blob data stays where it always was; the queue service gets a folder of its own inside it.
  const location =
    options.location === undefined
      ? undefined
      : service === "blob"
        ? options.location
        : join(options.location, service);
  const args = [
    script,
    `--${service}Host`,
    "127.0.0.1",
    `--${service}Port`,
    "0",
    "--silent",
    "--skipApiVersionCheck",
    // Azurite collects telemetry by default; tests must not talk to anything but loopback.
    "--disableTelemetry",
    ...(location === undefined ? ["--inMemoryPersistence", "--extentMemoryLimit", "256"] : ["--location", location]),
  ];
  if (location !== undefined) mkdirSync(location, { recursive: true });
  const child = spawn(process.execPath, args, {
    cwd: location ?? tmpdir(),
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
  return { port, pid, stop: () => stopProcess(child, pid) };
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
