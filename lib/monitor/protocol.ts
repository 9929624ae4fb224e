/**
 * Messages between the monitor (main thread: may start processes) and the agent
 * Worker (Matrix, E2EE, airlock, audit: may not). The agent sends only the text a
 * command was typed as; the monitor parses, resolves and judges it itself, so a
 * compromised agent can ask but cannot choose what runs.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { CheckedCommand } from "../airlock/policy_cli.ts";
import type { RunResult } from "../exec/run.ts";

/** Agent -> monitor. */
export type ToMonitor =
  | { type: "ready" }
  | { type: "stopped" }
  | { type: "fatal"; message: string }
  | { type: "check"; id: number; text: string }
  | { type: "run"; id: number; text: string; eventId: string; timeoutMs: number }
  | { type: "render"; id: number; job: number }
  | { type: "cancel"; id: number; reason: string };

/** Monitor -> agent. */
export type ToAgent =
  | { type: "start"; config: Config; execAs: string; verbose: boolean }
  | { type: "stop" }
  | { type: "checked"; id: number; checked: CheckedCommand }
  | { type: "rendered"; id: number; text: string }
  | { type: "done"; id: number; result: RunResult; text: string; sha256: string }
  | { type: "failed"; id: number; rule: string; reason: string };
