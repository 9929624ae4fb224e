/**
 * One command from the Matrix side to its reply, through the L4 Airlock. The
 * worker's part: 1 sender allowlist, 2 device trust (judged in sender_trust.ts,
 * refusal passed in), 3 freshness and replay, the built-ins, rate and
 * concurrency limits. Its refusals are recorded by the monitor; everything
 * else goes to the monitor as one run request (4 policy, 5 the record on disk,
 * the run), whose pushed progress and final answer become the reply and its edits.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { SeenEvents } from "../airlock/replay.ts";
import type { CommandOrigin } from "../monitor/protocol.ts";
import type { Monitor, RunFiles } from "./monitor_client.ts";
import { badEncryptedFile } from "../matrix/attachment.ts";
import { isBuiltin, runBuiltin } from "./builtins.ts";
import { aim, FLEET_HINT } from "../matrix/target.ts";
import { createJobs } from "./jobs.ts";
import { refusedFacts, refusedParts } from "../monitor/answers.ts";
import { rateLimiter } from "./limits.ts";
import type { CommandHandler, IncomingCommand, Replier, ReplyParts } from "./reply_parts.ts";

/** What the handler needs. */
export interface HandlerDeps {
  config: Config;
  seen: SeenEvents;
  /** The monitor, which records, judges and runs. */
  monitor: Monitor;
  /** Who commands run as, for `status`. */
  execAs: string;
  log: (msg: string) => void;
  /** How far the previous run got, and where this one notes its claims (`sync_mark.ts`). */
  mark?: { previous: number | null; claimed(originTs: number): void };
}

/** Builds the handler; it keeps the job table, counters and rate limits. */
export function createHandler(deps: HandlerDeps): CommandHandler {
  const { config, monitor, log } = deps;
  const jobs = createJobs();
  const limiter = rateLimiter(config.rateLimit);
  const strangers = rateLimiter(config.rateLimit);
  let strangerFlood = false;
  // Operators past their rate: one refusal is recorded and answered, then
  // nothing until the rate falls, so no device can fill the audit log.
  const flooding = new Set<string>();
  let dropped = 0;
  const counters = { commands: 0, refused: 0 };
  const startedAt = Date.now();
  const execAs = deps.execAs;
  const origin = (cmd: IncomingCommand): CommandOrigin => ({
    sender: cmd.sender,
    roomId: cmd.roomId,
    eventId: cmd.eventId,
    text: cmd.text,
  });

  /** Has a refusal recorded and answers it; one that cannot be recorded is still refused. */
  async function refuse(cmd: IncomingCommand, reply: Replier | null, rule: string, reason: string) {
    counters.refused++;
    log(`refused ${cmd.eventId} from ${cmd.sender}: ${rule}: ${reason}`);
    const tail = await monitor.record(origin(cmd), { kind: "deny", rule, reason });
    if (reply) await reply.send(refusedParts(rule, reason, tail));
  }

  const fleet = { fleet: config.fleet, hint: config.fleetHint };
  return async (cmd, reply) => {
    // Fleet targeting (target.ts), after classify's encryption check: a command for
    // other agents is as if never seen here, so nothing is claimed, recorded or answered.
    // An undecryptable one names no target: in a fleet only the hint agent refuses it.
    const aimed = aim(cmd.target ?? null, config, fleet);
    if (aimed === "ignore") return;
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
    // Sent before this agent started: history from the first sync. What the previous
    // run saw is not answered again; what came after its last claim arrived while the
    // agent was down, and is answered "expired" below.
    const previous = deps.mark?.previous ?? null;
    if (stale && cmd.originTs < startedAt && (previous === null || cmd.originTs <= previous)) {
      return;
    }
    if (!deps.seen.claim(cmd.eventId, cmd.originTs, cmd)) return;
    deps.mark?.claimed(cmd.originTs);
    // Every message counts, built-ins and refusals too: each is a reply, most a record.
    if (!limiter.take(cmd.sender)) {
      if (flooding.has(cmd.sender)) {
        if (dropped++ % 100 === 0) {
          log(`dropping messages of ${cmd.sender} past TIBET_NC_RATE_LIMIT (${dropped} so far)`);
        }
        return;
      }
      flooding.add(cmd.sender);
      return await refuse(
        cmd,
        reply,
        "deny.rate",
        `more than ${config.rateLimit} messages in a minute from ${cmd.sender} (TIBET_NC_RATE_LIMIT); further ones are dropped, unanswered and unrecorded, until the rate falls`,
      );
    }
    flooding.delete(cmd.sender);
    const refusal = cmd.refusal ?? await cmd.judge?.();
    if (refusal) return await refuse(cmd, reply, refusal.rule, refusal.reason);
    if (cmd.edit) {
      return await refuse(
        cmd,
        null,
        "deny.approval.edit",
        "an edit never approves or rejects; send `approve ID` as a new message",
      );
    }
    if (stale) {
      const secs = Math.round(age / 1000);
      return await refuse(
        cmd,
        reply,
        "deny.expired",
        `expired: the command is ${secs} s old (TIBET_NC_TIMEBOX is ${config.timebox} s)${
          cmd.originTs < startedAt ? "; it arrived while the agent was not running" : ""
        }; not run`,
      );
    }

    // Untargeted in a fleet: the one hinting agent says how to target, nothing runs.
    if (aimed === "hint") {
      await reply.send({ head: FLEET_HINT, answer: refusedFacts("fleet.untargeted") });
      return;
    }
    const words = cmd.text.trim().split(/\s+/);
    if (isBuiltin(words)) {
      const name = words[0].toLowerCase();
      const parts = runBuiltin(
        words,
        { config, chain: monitor.chain, jobs, startedAt, counters, execAs },
        cmd.sender,
      );
      if (name === "exit" || name === "cancel") {
        parts.tail = await monitor.record(origin(cmd), { kind: name });
      }
      await reply.send({ ...parts, answer: parts.answer ?? { status: "done" } });
      return;
    }

    const running = jobs.running().length;
    if (running >= config.maxConcurrent) {
      return await refuse(
        cmd,
        reply,
        "deny.busy",
        `${running} commands are running (TIBET_NC_MAX_CONCURRENT); try again when one ends, or \`cancel\` one`,
      );
    }
    await execute(cmd, reply);
  };

  /** One run request; its pushed progress becomes a "running" reply and its edits. */
  async function execute(cmd: IncomingCommand, reply: Replier): Promise<void> {
    const text = cmd.text.replace(/^timeout=\d+s?\s+/, "");
    let replyId: string | null = null;
    let latest: ReplyParts | null = null;
    let busy: Promise<void> = Promise.resolve();
    // Sends run one at a time; progress that arrives meanwhile is coalesced to the newest.
    const flush = () => {
      busy = busy.then(async () => {
        const parts = latest;
        latest = null;
        if (parts === null) return;
        if (replyId === null) replyId = await reply.send(parts);
        else await reply.edit(replyId, parts);
      }).catch((e) => log(`cannot stream #${job.id}: ${(e as Error).message}`));
    };
    const run = monitor.run(
      origin(cmd),
      (elapsedMs, body) => {
        job.held = false;
        latest = {
          head: `running #${job.id} (${Math.round(elapsedMs / 1000)} s): ${text}`,
          pre: body,
          answer: { status: "running" },
        };
        flush();
      },
      runFiles(cmd, reply),
      (parts) => {
        // Held for approval: the reply says how to approve; a run or a final edits it.
        job.held = true;
        latest = parts;
        flush();
      },
    );
    const job = jobs.add({
      eventId: cmd.eventId,
      sender: cmd.sender,
      roomId: cmd.roomId,
      text,
      startedAt: Date.now(),
      handle: run,
    });
    const final = await run.done;
    jobs.remove(job);
    latest = null;
    await busy;
    if (final.ran) counters.commands++;
    else counters.refused++;
    if (!final.ran) log(`refused ${cmd.eventId}: ${final.parts.head}`);
    if (replyId === null) await reply.send(final.parts);
    else await reply.edit(replyId, final.parts);
  }
}

/** What the monitor may ask of this command's files: send one to the room, fetch its attachment. */
function runFiles(cmd: IncomingCommand, reply: Replier): RunFiles {
  const a = cmd.attachment;
  return {
    attachment: a && {
      name: a.name,
      size: a.size,
      encrypted: a.file !== null,
      unusable: a.file === null ? undefined : badEncryptedFile(a.file) ?? undefined,
    },
    send: async (name, size, body) => {
      await reply.sendFile(name, size, body);
    },
    fetch: () =>
      cmd.fetchAttachment?.() ?? Promise.reject(new Error("the command has no attachment")),
  };
}
