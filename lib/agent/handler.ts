/**
 * One command from the Matrix side to its reply, through the L4 Airlock:
 * 1 sender allowlist, 2 device trust (judged in sender_trust.ts, refusal passed in),
 * 3 freshness and replay, 4 command policy, 5 chain advance (the audit record is
 * on disk before anything runs); then the run, streamed, and the final reply
 * with the provenance line.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import { AuditUnavailableError } from "../audit/errors.ts";
import type { Config } from "../config/config.ts";
import type { SeenEvents } from "../airlock/replay.ts";
import { formatBytes } from "../exec/output.ts";
import type { RunResult } from "../exec/run.ts";
import type { Executor } from "./executor.ts";
import { isBuiltin, runBuiltin } from "./builtins.ts";
import { createJobs } from "./jobs.ts";
import { rateLimiter } from "./limits.ts";
import type { CommandHandler, IncomingCommand, Replier, ReplyParts } from "./reply_parts.ts";

/** A command still running after this gets a "running" reply, then edits. */
export const STREAM_AFTER_MS = 2000;
/** Minimum time between two edits of a running reply (homeserver rate limits). */
export const EDIT_EVERY_MS = 3000;
/** The intent (`erachter`) of every record the agent writes for an operator. */
export const ERACHTER = "operator diagnostics via Matrix";

/** What the handler needs. */
export interface HandlerDeps {
  config: Config;
  audit: AuditLog;
  seen: SeenEvents;
  /** The monitor, which checks and runs commands. */
  executor: Executor;
  /** Who commands run as, for `status`. */
  execAs: string;
  log: (msg: string) => void;
}

/** The provenance line of a record: `TIBET: <token> | L4: <head> | #<seq>`. */
export function provenance(r: AuditRecord): string {
  return `TIBET: ${r.token.id} | L4: ${r.l4.slice(0, 16)} | #${r.seq}`;
}

/** Builds the handler; it keeps the job table, counters and rate limits. */
export function createHandler(deps: HandlerDeps): CommandHandler {
  const { config, audit, log } = deps;
  const jobs = createJobs();
  const limiter = rateLimiter(config.rateLimit);
  const strangers = rateLimiter(config.rateLimit);
  let strangerFlood = false;
  const counters = { commands: 0, refused: 0 };
  const startedAt = Date.now();
  const execAs = deps.execAs;

  /** Records a refusal and answers it; a refusal that cannot be recorded is still refused. */
  async function refuse(cmd: IncomingCommand, reply: Replier | null, rule: string, reason: string) {
    counters.refused++;
    log(`refused ${cmd.eventId} from ${cmd.sender}: ${rule}: ${reason}`);
    let tail: string | undefined;
    try {
      const rec = await audit.append({
        token_type: "nc.airlock.deny",
        actor: cmd.sender,
        erin: cmd.text,
        eraan: [cmd.eventId],
        eromheen: { hostname: config.hostname, room: cmd.roomId, verdict: "deny", rule, reason },
        erachter: ERACHTER,
      });
      tail = provenance(rec);
    } catch (e) {
      tail = `(not recorded: ${(e as Error).message})`;
    }
    if (reply) await reply.send({ head: `refused (${rule}): ${reason}`, tail });
  }

  return async (cmd, reply) => {
    // 1. Sender allowlist. Strangers get no answer: nothing about the host leaks.
    if (!config.allowedUsers.includes(cmd.sender)) {
      // One budget for all strangers, so no number of accounts can flood the audit log.
      if (!strangers.take("*")) {
        if (strangerFlood) return;
        strangerFlood = true;
        return await refuse(
          cmd,
          null,
          "deny.sender.flood",
          `more than ${config.rateLimit} messages in a minute from users not in TIBET_NC_ALLOWED_USERS; further ones are dropped unrecorded until the rate falls`,
        );
      }
      strangerFlood = false;
      if (!deps.seen.claim(cmd.eventId, cmd.originTs)) return;
      return await refuse(
        cmd,
        null,
        "deny.sender",
        `${cmd.sender} is not in TIBET_NC_ALLOWED_USERS`,
      );
    }
    // 2. Device trust: judged when decrypting and again with fresh keys (sender_trust.ts).
    // 3. Freshness and replay.
    if (deps.seen.has(cmd.eventId)) return;
    const age = Date.now() - cmd.originTs;
    const stale = Math.abs(age) > config.timebox * 1000;
    // Sent before this agent started: history from the first sync, never run or answered.
    if (stale && cmd.originTs < startedAt) return;
    if (!deps.seen.claim(cmd.eventId, cmd.originTs, cmd)) return;
    const refusal = cmd.refusal ?? await cmd.judge?.();
    if (refusal) return await refuse(cmd, reply, refusal.rule, refusal.reason);
    if (stale) {
      const secs = Math.round(age / 1000);
      return await refuse(
        cmd,
        reply,
        "deny.expired",
        `expired: the command is ${secs} s old (TIBET_NC_TIMEBOX is ${config.timebox} s); not run`,
      );
    }

    const words = cmd.text.trim().split(/\s+/);
    if (isBuiltin(words)) {
      const name = words[0].toLowerCase();
      const parts = runBuiltin(
        words,
        { config, audit, jobs, startedAt, counters, execAs },
        cmd.sender,
      );
      if (name === "exit" || name === "cancel") {
        try {
          const rec = await audit.append({
            token_type: name === "exit" ? "nc.session.close" : "nc.command.cancel",
            actor: cmd.sender,
            erin: cmd.text,
            eraan: [cmd.eventId],
            eromheen: { hostname: config.hostname, room: cmd.roomId },
            erachter: ERACHTER,
          });
          parts.tail = provenance(rec);
        } catch (e) {
          parts.tail = `(not recorded: ${(e as Error).message})`;
        }
      }
      await reply.send(parts);
      return;
    }

    if (!limiter.take(cmd.sender)) {
      return await refuse(
        cmd,
        reply,
        "deny.rate",
        `more than ${config.rateLimit} commands in a minute from ${cmd.sender} (TIBET_NC_RATE_LIMIT); wait a moment`,
      );
    }
    if (jobs.size >= config.maxConcurrent) {
      return await refuse(
        cmd,
        reply,
        "deny.busy",
        `${jobs.size} commands are running (TIBET_NC_MAX_CONCURRENT); try again when one ends, or \`cancel\` one`,
      );
    }

    // A leading `timeout=N` asks for a longer (or shorter) limit, within the maximum.
    let text = cmd.text;
    let timeoutS = config.commandTimeout;
    const t = text.match(/^timeout=(\d+)(s?)\s+(.*)$/s);
    if (t) {
      timeoutS = Number(t[1]);
      text = t[3];
      if (timeoutS < 1 || timeoutS > config.commandTimeoutMax) {
        return await refuse(
          cmd,
          reply,
          "deny.timeout",
          `timeout=${
            t[1]
          } is outside 1..${config.commandTimeoutMax} s (TIBET_NC_COMMAND_TIMEOUT_MAX)`,
        );
      }
    }

    // 4. Policy, on the parsed argv after resolving the program in the bin dir.
    const checked = await deps.executor.check(text);
    if (checked.verdict === "deny" || !checked.argv || !checked.path) {
      return await refuse(cmd, reply, checked.rule, checked.reason);
    }

    // 5. Chain advance: nothing runs unless its record is on disk.
    let record: AuditRecord;
    try {
      record = await audit.append({
        token_type: "nc.command.execute",
        actor: cmd.sender,
        erin: cmd.text,
        eraan: [cmd.eventId],
        eromheen: {
          hostname: config.hostname,
          room: cmd.roomId,
          verdict: "allow",
          rule: checked.rule,
          timeout_s: timeoutS,
        },
        erachter: ERACHTER,
      });
    } catch (e) {
      counters.refused++;
      const why = e instanceof AuditUnavailableError
        ? e.message
        : `audit log error: ${(e as Error).message}`;
      log(`refused ${cmd.eventId}: ${why}`);
      await reply.send({
        head: `refused (deny.audit): the audit log cannot be written, so nothing runs: ${why}`,
      });
      return;
    }
    counters.commands++;
    await execute(cmd, text, timeoutS, record, reply);
  };

  async function execute(
    cmd: IncomingCommand,
    text: string,
    timeoutS: number,
    record: AuditRecord,
    reply: Replier,
  ): Promise<void> {
    const run = deps.executor.start(text, cmd.eventId, timeoutS * 1000);
    const job = jobs.add({
      eventId: cmd.eventId,
      sender: cmd.sender,
      roomId: cmd.roomId,
      text,
      startedAt: Date.now(),
      handle: run,
    });

    // Streaming: a "running" reply after STREAM_AFTER_MS, then throttled edits.
    let replyId: string | null = null;
    let shown = "";
    let lastEdit = 0;
    let busy: Promise<void> = Promise.resolve();
    const tick = () => {
      busy = busy.then(async () => {
        const now = Date.now();
        if (now - job.startedAt < STREAM_AFTER_MS) return;
        if (replyId !== null && now - lastEdit < EDIT_EVERY_MS) return;
        const body = await run.render();
        if (replyId !== null && body === shown) return;
        const parts = {
          head: `running #${job.id} (${Math.round((now - job.startedAt) / 1000)} s): ${text}`,
          pre: body,
        };
        if (replyId === null) replyId = await reply.send(parts);
        else await reply.edit(replyId, parts);
        shown = body;
        lastEdit = Date.now();
      }).catch((e) => log(`cannot stream #${job.id}: ${(e as Error).message}`));
    };
    const streamer = setInterval(tick, 500);
    const outcome = await run.done;
    clearInterval(streamer);
    jobs.remove(job);
    await busy;

    if (!outcome.ok) {
      const head = `refused (${outcome.rule}): ${outcome.reason}`;
      log(`#${job.id} ${head}`);
      let tail = provenance(record);
      try {
        tail = provenance(
          await audit.appendResult(record, {
            exit_code: null,
            eraan: [cmd.eventId],
            eromheen: { failed: outcome.rule, reason: outcome.reason },
          }),
        );
      } catch (e) {
        tail += ` (result not recorded: ${(e as Error).message})`;
      }
      await finish(reply, replyId, { head, tail });
      return;
    }
    const result = outcome.result;
    let tail: string;
    try {
      const res = await audit.appendResult(record, {
        exit_code: result.code,
        duration_ms: Math.round(result.durationMs),
        outputSha256: outcome.sha256,
        eraan: [cmd.eventId],
        eromheen: {
          output_bytes: result.totalBytes,
          timed_out: result.timedOut,
          cancelled: result.cancelled,
        },
      });
      tail = provenance(res);
    } catch (e) {
      tail = `${provenance(record)} (result not recorded: ${(e as Error).message})`;
    }
    await finish(reply, replyId, { head: summary(result, timeoutS), pre: outcome.text, tail });
  }

  async function finish(reply: Replier, replyId: string | null, parts: ReplyParts) {
    if (replyId === null) await reply.send(parts);
    else await reply.edit(replyId, parts);
  }
}

function summary(r: RunResult, timeoutS: number): string {
  const secs = (r.durationMs / 1000).toFixed(r.durationMs < 10_000 ? 2 : 0);
  const why = r.timedOut
    ? `, stopped after the ${timeoutS} s timeout`
    : r.cancelled
    ? `, ${r.cancelReason ?? "cancelled"}`
    : r.outputLimited
    ? `, stopped at the output limit (${formatBytes(r.totalBytes)})`
    : "";
  return `exit ${r.code ?? r.signal ?? "?"} · ${secs} s${why}`;
}
