/**
 * What the harness starts outside this process (Synapse, the agent) and leaves
 * on disk (temporary dirs) is undone when SIGINT, SIGTERM or SIGHUP ends the
 * process (Ctrl-C, `timeout`, a closed terminal); a normal end is each owner's
 * own `close()`. Used by the tests and by `deno task demo`.
 * @module
 */

type Cleanup = () => unknown;

const cleanups = new Set<Cleanup>();
let stopping = false;
let hooked = false;

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Registers `cleanup` to run, in registration order, when a signal ends the
 * process; returns a function that unregisters it (call it once the thing is
 * cleaned up the normal way).
 */
export function onExit(cleanup: Cleanup): () => void {
  hook();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** True once a signal started the cleanup: start nothing new then. */
export function shuttingDown(): boolean {
  return stopping;
}

/** Runs every registered cleanup once, each to its end, errors ignored. */
async function runCleanups(): Promise<void> {
  stopping = true;
  for (const c of [...cleanups]) {
    cleanups.delete(c);
    try {
      await c();
    } catch { /* the others still run */ }
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  for (const [sig, n] of Object.entries(SIGNALS) as [Deno.Signal, number][]) {
    Deno.addSignalListener(sig, () => {
      if (stopping) return; // a second Ctrl-C while cleaning up: let it finish
      runCleanups().finally(() => Deno.exit(128 + n));
    });
  }
}

/** Undo steps of one harness, and the `close()` that runs them. */
export interface CleanupStack {
  /** Push an undo step as each thing is started; they run newest first. */
  cleanups: (() => Promise<unknown>)[];
  /** Runs every step once, each to its end, errors ignored; also on a signal. */
  close(): Promise<void>;
}

/** A stack of undo steps, registered with {@linkcode onExit} until it is closed. */
export function cleanupStack(): CleanupStack {
  const cleanups: (() => Promise<unknown>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      for (const c of cleanups.reverse()) await c().catch(() => {});
      unregister();
    })();
  const unregister = onExit(close);
  return { cleanups, close };
}
