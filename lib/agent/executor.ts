/**
 * The agent's view of command execution: ask the monitor to check a command, to
 * run it, for its output so far, to cancel it. The agent itself cannot start a
 * process; its Deno permissions do not allow it.
 * @module
 */

import type { CheckedCommand } from "../airlock/policy_cli.ts";
import type { RunResult } from "../exec/run.ts";
import type { ToAgent, ToMonitor } from "../monitor/protocol.ts";

/** How a run ended, as the monitor reports it. */
export type Outcome =
  | { ok: true; result: RunResult; text: string; sha256: string }
  | { ok: false; rule: string; reason: string };

/** A command the monitor is running. */
export interface ExecJob {
  /** The cleaned output so far, fitted into a message. */
  render(): Promise<string>;
  cancel(reason: string): void;
  done: Promise<Outcome>;
}

/** Execution, as the handler uses it. */
export interface Executor {
  /** Parses, resolves and judges `text` as the monitor would. */
  check(text: string): Promise<CheckedCommand>;
  /** Asks the monitor to run `text` (it checks it again). */
  start(text: string, eventId: string, timeoutMs: number): ExecJob;
}

/** An executor that talks to the monitor through `post` and `onMessage`. */
export function monitorExecutor(
  post: (m: ToMonitor) => void,
): { executor: Executor; receive(m: ToAgent): void } {
  let next = 1;
  const waiting = new Map<number, (m: ToAgent) => void>();
  const done = new Map<number, (o: Outcome) => void>();
  const ask = <T>(m: ToMonitor & { id: number }, pick: (r: ToAgent) => T): Promise<T> =>
    new Promise((resolve) => {
      waiting.set(m.id, (r) => resolve(pick(r)));
      post(m);
    });
  const executor: Executor = {
    check: (text) =>
      ask({ type: "check", id: next++, text }, (r) => (r as { checked: CheckedCommand }).checked),
    start(text, eventId, timeoutMs) {
      const id = next++;
      const outcome = new Promise<Outcome>((resolve) => done.set(id, resolve));
      post({ type: "run", id, text, eventId, timeoutMs });
      return {
        render: () => {
          // Several renders of one job may be in flight; key each by a fresh id.
          const rid = next++;
          return new Promise((resolve) => {
            waiting.set(rid, (r) => resolve(r.type === "rendered" ? r.text : ""));
            post({ type: "render", id: rid, job: id });
          });
        },
        cancel: (reason) => post({ type: "cancel", id, reason }),
        done: outcome,
      };
    },
  };
  return {
    executor,
    receive(m) {
      if (m.type === "done" || m.type === "failed") {
        const resolve = done.get(m.id);
        done.delete(m.id);
        resolve?.(
          m.type === "done"
            ? { ok: true, result: m.result, text: m.text, sha256: m.sha256 }
            : { ok: false, rule: m.rule, reason: m.reason },
        );
      } else if ("id" in m) {
        const resolve = waiting.get(m.id);
        waiting.delete(m.id);
        resolve?.(m);
      }
    },
  };
}
