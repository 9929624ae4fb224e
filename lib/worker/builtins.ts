/**
 * Built-in commands of the original tibet-nc (`help`, `status`, `chain`, `exit`)
 * and ours (`jobs`, `cancel`). They run inside the Matrix worker, never as a
 * process; `exit` and `cancel` are recorded by the monitor.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { ChainInfo } from "../monitor/protocol.ts";
import type { Jobs } from "./jobs.ts";
import type { ReplyParts } from "./reply_parts.ts";
import { VERSION } from "../version.ts";

/** What the built-ins can see. */
export interface BuiltinContext {
  config: Config;
  /** The chain as the monitor last reported it. */
  chain: () => ChainInfo;
  jobs: Jobs;
  startedAt: number;
  counters: { commands: number; refused: number };
  execAs: string;
}

const HELP = `tibet-nc: send "$ <command>" (in the control room the "$ " may be left out).
Commands run without a shell, from the allowlisted bin dir, under a pseudo-terminal.
  timeout=N <command>   allow up to N seconds (within the configured maximum)
  duration=N <command>  a screen program (top, htop, ...): show its screen for N s (default 5)
  screen=yes <command>  render the command's output as a terminal screen (screen=no: plain)
  watch=N <command>     run it every N s (N >= 2), one reply edited, until cancel
  a | b | c             a pipeline: each stage judged on its own, connected by the agent
Built-ins:
  help      this text
  status    the agent's state
  chain     the audit chain head, record count and signing key
  jobs      running commands
  pending   commands held for another operator's approval
  cancel N  stop running command #N (or the last one); withdraw a held one (yours only)
  approve ID / reject ID   decide another operator's held command
  exit      close the session (recorded; the agent keeps running)
  hosts     one line about this agent: name, tags, version, uptime, chain head
In a room of several agents (a fleet) a command names the agents it is for:
  @web-1 $ uptime   @web-* $ df -h   @role=db $ ...   @all $ ...   @all hosts`;

const BUILTINS = new Set(["help", "status", "chain", "jobs", "pending", "cancel", "exit", "hosts"]);

/**
 * True when `words` is a built-in: its name alone, or `cancel` with one argument.
 * `ls help` or `help me` are not built-ins (and go to the policy like any command).
 */
export function isBuiltin(words: string[]): boolean {
  const name = words[0]?.toLowerCase();
  if (!BUILTINS.has(name)) return false;
  return words.length === 1 || (name === "cancel" && words.length === 2);
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

/** Answers a built-in; `words` is the command split on white space. */
export function runBuiltin(words: string[], ctx: BuiltinContext, sender: string): ReplyParts {
  const { head, pubkeyHex } = ctx.chain();
  switch (words[0].toLowerCase()) {
    case "help":
      return { pre: HELP };
    case "status":
      return {
        pre: [
          `host:        ${ctx.config.hostname}`,
          `uptime:      ${duration(Date.now() - ctx.startedAt)}`,
          `commands:    ${ctx.counters.commands} run, ${ctx.counters.refused} refused`,
          `running:     ${ctx.jobs.running().length} of at most ${ctx.config.maxConcurrent}`,
          `held:        ${ctx.jobs.size - ctx.jobs.running().length} waiting for approval`,
          `runs as:     ${ctx.execAs}`,
          `bin dir:     ${ctx.config.binDir}`,
          `timebox:     ${ctx.config.timebox} s`,
          `chain:       #${head.seq}, L4 ${head.l4.slice(0, 16)}`,
        ].join("\n"),
      };
    case "chain":
      return {
        pre: [
          `chain id:    ${head.chainId}`,
          `records:     ${head.seq}`,
          `head (L4):   ${head.l4}`,
          `last token:  ${head.tokenId ?? "(none)"}`,
          `signing key: ${pubkeyHex}`,
          `verify with: tibet-nc audit verify --pubkey ${pubkeyHex} --head ${head.l4}`,
        ].join("\n"),
      };
    case "pending": {
      const held = ctx.jobs.list().filter((j) => j.held);
      if (held.length === 0) return { head: "no commands wait for approval" };
      return {
        pre: held.map((j) =>
          `#${j.id}  ${duration(Date.now() - j.startedAt).padEnd(7)} ${j.sender}  ${j.text}`
        ).join("\n"),
      };
    }
    case "hosts":
      return {
        pre: [
          ctx.config.hostname,
          `tags ${ctx.config.tags.join(",") || "(none)"}`,
          `tibet-nc ${VERSION}`,
          `up ${duration(Date.now() - ctx.startedAt)}`,
          `chain #${head.seq} L4 ${head.l4.slice(0, 16)}`,
        ].join("  "),
      };
    case "jobs": {
      const list = ctx.jobs.running();
      if (list.length === 0) return { head: "no running commands" };
      return {
        pre: list.map((j) =>
          `#${j.id}  ${duration(Date.now() - j.startedAt).padEnd(7)} ${j.sender}  ${j.text}`
        ).join("\n"),
      };
    }
    case "cancel": {
      const list = ctx.jobs.list();
      const job = words[1] ? ctx.jobs.find(words[1]) : list.at(-1);
      if (!job) {
        return { head: words[1] ? `no running command ${words[1]}` : "no running commands" };
      }
      if (job.held && job.sender !== sender) {
        return {
          head: `#${job.id} waits for approval; only ${job.sender}, who asked, can withdraw it`,
        };
      }
      job.handle.cancel(`${job.held ? "withdrawn" : "cancelled"} by ${sender}`);
      return { head: `${job.held ? "withdrawing" : "cancelling"} #${job.id}: ${job.text}` };
    }
    default:
      return { head: "session closed (recorded in the chain); send a command to start again" };
  }
}
