/**
 * The monitor's answers to the worker's requests (OpenSSH's `monitor.c` in
 * miniature): each request is checked as if it came from an attacker, since a
 * worker compromised through a parser or SDK bug can send anything.
 * @module
 */

import { recentEventIds } from "../audit/by_event.ts";
import { notRecorded, provenance } from "./answers.ts";
import { type MonitorContext, type Pending, startCommand } from "./command_run.ts";
import { answerUnfinished } from "./interrupted.ts";
import type { ToMonitor, ToWorker } from "./protocol.ts";
import { appendRequested, BadRequestError, checkOrigin } from "./records.ts";

/** The event ids remembered as run, beyond those in the log's recent tail. */
const MAX_REMEMBERED = 100_000;

/** The monitor's request handler. */
export interface RequestHandler {
  handle(m: ToMonitor): Promise<void>;
  /** Stops every command and waits for their final answers. */
  cancelAll(reason: string): Promise<void>;
}

/** Builds the handler; `send` delivers to the worker. */
export function requestHandler(ctx: MonitorContext, send: (m: ToWorker) => void): RequestHandler {
  const { config, audit, log } = ctx;
  const pending = new Map<number, Pending>();
  const ran = recentEventIds(audit.path);
  let askedInterrupted = false;
  const remember = (id: string) => {
    ran.add(id);
    if (ran.size > MAX_REMEMBERED) ran.delete(ran.values().next().value!);
  };

  return {
    async handle(m) {
      switch (m.type) {
        case "run": {
          if (pending.has(m.id)) return log(`monitor: ignored a second run request #${m.id}`);
          // Refused unrecorded: a request no honest worker sends.
          const refuse = (rule: string, reason: string) => {
            log(`monitor refused run request #${m.id}: ${rule}: ${reason}`);
            const parts = { head: `refused (${rule}): ${reason}` };
            send({ type: "final", id: m.id, ran: false, parts, head: audit.head() });
          };
          try {
            checkOrigin(m.origin, config.allowedUsers);
          } catch (e) {
            return refuse("deny.request", (e as Error).message);
          }
          if (pending.size >= config.maxConcurrent) {
            // The worker counts too; this holds even if it does not.
            return refuse(
              "deny.busy",
              `${pending.size} commands are running (TIBET_NC_MAX_CONCURRENT)`,
            );
          }
          const job = startCommand(ctx, m.origin, {
            progress: (elapsedMs, text) => send({ type: "progress", id: m.id, elapsedMs, text }),
            final: (didRun, parts) =>
              send({ type: "final", id: m.id, ran: didRun, parts, head: audit.head() }),
          }, (eventId) => {
            if (ran.has(eventId)) return true;
            remember(eventId);
            return false;
          });
          pending.set(m.id, job);
          await job.done;
          pending.delete(m.id);
          return;
        }
        case "record": {
          let tail: string;
          try {
            tail = provenance(await appendRequested(audit, config, m.origin, m.entry));
          } catch (e) {
            if (e instanceof BadRequestError) log(`monitor refused record request: ${e.message}`);
            tail = notRecorded(e);
          }
          send({ type: "recorded", id: m.id, tail, head: audit.head() });
          return;
        }
        case "cancel":
          pending.get(m.id)?.cancel(String(m.reason).slice(0, 200));
          return;
        case "interrupted": {
          // Once a run: the list comes from the replay store at start.
          const list = askedInterrupted || !Array.isArray(m.unfinished) ? [] : m.unfinished;
          askedInterrupted = true;
          const answers = await answerUnfinished(list, audit, config, log);
          send({ type: "answers", id: m.id, answers, head: audit.head() });
          return;
        }
      }
    },
    async cancelAll(reason) {
      const jobs = [...pending.values()];
      for (const j of jobs) j.cancel(reason);
      await Promise.allSettled(jobs.map((j) => j.done));
    },
  };
}
