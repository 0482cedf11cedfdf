import type { LedgerStore, LockHandle } from "../ledger/types.js";
import type { RegistryGateway, RegistryRef } from "../registry/types.js";
import type { Plan } from "../sync/plan.js";
import { renderPlan } from "../sync/render.js";
import type { CliIO } from "./command.js";
import { coloursFor, count, envOf, message, PREFIX, thousands } from "./output.js";
import { registryName } from "./report.js";

/**
 * What a person sees while a write runs: the plan before its PATCH, then progress on stderr while
 * ARM applies it (elapsed seconds; `--quiet` silences it), and on Ctrl-C an honest word on whether
 * the update may still complete, with the locks released before the process ends.
 */

export interface SessionOptions {
  /** --json: stdout is the envelope's alone, so the plan is not printed before the write. */
  readonly json: boolean;
  readonly quiet: boolean;
  readonly showUnchanged: boolean;
}

/** How often a progress line is written when stderr is not a terminal (a terminal gets one updated line). */
const LOG_EVERY_MS = 10_000;
const TICK_MS = 1_000;
/** A lock not had after this long gets a line on stderr (another run holds the registry). */
const LOCK_NOTICE_MS = 1_000;
/** 128 + SIGINT, what shells report for a Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

export interface ApplySession {
  /** The ports to run with: the same edges, watched. */
  wrap<P extends { registry: RegistryGateway; ledger: LedgerStore }>(ports: P): P;
  /** Pass as `beforeWrite`: prints the plan about to be written. */
  readonly beforeWrite: (plan: Plan) => void;
  /** Registries whose plan was printed before their write (the summary does not print it again). */
  readonly printed: ReadonlySet<string>;
  dispose(): void;
}

export function startApplySession(io: CliIO, options: SessionOptions): ApplySession {
  const held = new Set<LockHandle>();
  const printed = new Set<string>();
  /** PATCHes sent and not answered yet, by resource ID: with --concurrency there may be several. */
  const writing = new Map<string, { readonly ref: RegistryRef; readonly started: number }>();
  /** Written, and the run still verifying and recording them. */
  const unrecorded = new Map<string, RegistryRef>();
  /** Written and recorded. */
  const recorded = new Set<string>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  const tty = (io.stderr as { isTTY?: unknown }).isTTY === true;
  /** A terminal's progress line is rewritten in place; it must be ended before any other line. */
  let lineOpen = false;

  const endLine = (): void => {
    if (lineOpen) io.stderr.write("\n");
    lineOpen = false;
  };
  const say = (text: string): void => {
    endLine();
    message(io.stderr, text);
  };

  const stopTicker = (): void => {
    if (ticker !== undefined) clearInterval(ticker);
    ticker = undefined;
    endLine();
  };

  const progress = (): void => {
    const now = Date.now();
    const seconds = (started: number): number => Math.round((now - started) / 1000);
    const pending = [...writing.values()];
    const [only] = pending;
    if (only === undefined) return;
    const text =
      pending.length === 1
        ? `${PREFIX} waiting for ARM to apply the update to ${only.ref.name}: ${seconds(only.started)}s elapsed`
        : `${PREFIX} waiting for ARM to apply ${pending.length} updates: ${pending.map((w) => `${w.ref.name} (${seconds(w.started)}s elapsed)`).join(", ")}`;
    if (tty) {
      // \x1b[K clears what a longer previous line left behind.
      io.stderr.write(`\r${text}\u001b[K`);
      lineOpen = true;
    } else io.stderr.write(`${text}\n`);
  };

  const onInterrupt = (): void => {
    stopTicker();
    const lines = [
      ...[...writing.values()].map(
        ({ ref }) =>
          `interrupted while ARM was applying the update to ${ref.name}: the update was sent and may still complete. Run 'acr-allowlist-sync plan --registry ${ref.id}' to see the rules it holds; the next apply settles the ledger.`,
      ),
      ...[...unrecorded.values()].map(
        (ref) =>
          `interrupted after ARM applied the update to ${ref.name}, before it was recorded: the rules are written; the next apply records the ownership (the ledger already claims the added rules).`,
      ),
    ];
    if (lines.length === 0)
      lines.push(
        recorded.size === 0
          ? "interrupted before a write was sent: the registry's rules were not changed by this run."
          : `interrupted with no write in flight: ${count(recorded.size, "update")} applied and recorded; no other registry was changed by this run.`,
      );
    for (const line of lines) message(io.stderr, line);
    const locks = held.size;
    void Promise.allSettled([...held].map((lock) => lock.release())).then(() => {
      message(
        io.stderr,
        locks === 0 ? "no lock was held." : locks === 1 ? "the lock is released." : `the ${locks} locks are released.`,
      );
      process.exit(EXIT_INTERRUPTED);
    });
  };
  if (io.handleSignals === true) process.once("SIGINT", onInterrupt);

  return {
    printed,
    beforeWrite: (plan) => {
      if (options.json) return;
      printed.add(plan.registry.id);
      io.stdout.write(
        renderPlan(plan, { showUnchanged: options.showUnchanged, colours: coloursFor(io.stdout, envOf(io)) }),
      );
      io.stdout.write(`Writing ${plan.registry.name}...\n`);
    },
    wrap: (ports) => {
      const registry: RegistryGateway = {
        read: (ref, readOptions) => ports.registry.read(ref, readOptions),
        replaceIpRules: async (ref, request, writeOptions) => {
          const started = Date.now();
          writing.set(ref.id, { ref, started });
          if (!options.quiet) {
            progress();
            ticker ??= setInterval(progress, tty ? TICK_MS : LOG_EVERY_MS);
            ticker.unref();
          }
          try {
            await ports.registry.replaceIpRules(ref, request, writeOptions);
            unrecorded.set(ref.id, ref);
          } finally {
            writing.delete(ref.id);
            if (writing.size === 0) stopTicker();
          }
          if (!options.quiet) say(`ARM applied the update to ${ref.name} in ${elapsed(started)}.`);
        },
      };
      const ledger: LedgerStore = {
        read: (id) => ports.ledger.read(id),
        write: (state) => ports.ledger.write(state),
        appendAudit: async (entry) => {
          await ports.ledger.appendAudit(entry);
          if (unrecorded.delete(entry.registryId)) recorded.add(entry.registryId);
        },
        listAudit: (id) => ports.ledger.listAudit(id),
        readFreeze: (id) => ports.ledger.readFreeze(id),
        writeFreeze: (id, freeze) => ports.ledger.writeFreeze(id, freeze),
        acquireLock: async (id, lockOptions) => {
          // Said only when the wait is noticeable: the common case (no other run) stays silent.
          const waiting = options.quiet
            ? undefined
            : setTimeout(() => {
                say(
                  `waiting for the lock of ${registryName(id)}: another run holds it (up to ${thousands(lockOptions.waitMs)} ms, SYNC_LOCK_WAIT_MS).`,
                );
              }, LOCK_NOTICE_MS);
          waiting?.unref();
          let lock: LockHandle;
          try {
            lock = await ports.ledger.acquireLock(id, lockOptions);
          } finally {
            clearTimeout(waiting);
          }
          held.add(lock);
          return {
            release: async () => {
              held.delete(lock);
              await lock.release();
            },
            // The blob lease's check before every write must survive the wrapping.
            assertHeld: () => lock.assertHeld?.(),
          };
        },
      };
      return { ...ports, registry, ledger };
    },
    dispose: () => {
      stopTicker();
      process.removeListener("SIGINT", onInterrupt);
    },
  };
}

function elapsed(started: number): string {
  const ms = Date.now() - started;
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
