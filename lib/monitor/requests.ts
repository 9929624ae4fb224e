/**
 * The monitor's answers to the worker's requests (OpenSSH's `monitor.c` in
 * miniature): each request is checked as if it came from an attacker, since a
 * worker compromised through a parser or SDK bug can send anything.
 * @module
 */

import { recentEventIds } from "../audit/by_event.ts";
import { notRecorded, provenance, refusedParts } from "./answers.ts";
import { type MonitorContext, type Pending, startCommand } from "./command_run.ts";
import { answerUnfinished } from "./interrupted.ts";
import type { ToMonitor, ToWorker } from "./protocol.ts";
import { type FileChannel, fileChannel } from "./file_channel.ts";
import { type Approvals, createApprovals } from "./approvals.ts";
import { appendRequested, BadRequestError, checkOrigin } from "./records.ts";

/** The event ids remembered as run, beyond those in the log's recent tail. */
const MAX_REMEMBERED = 100_000;

/** The monitor's request handler. */
export interface RequestHandler {
  handle(m: ToMonitor): Promise<void>;
  /** Stops every command and waits for their final answers. */
  cancelAll(reason: string): Promise<void>;
}

/** Builds the handler; `send` delivers to the worker, transferring `transfer`. */
export function requestHandler(
  context: Omit<MonitorContext, "approvals"> & { approvals?: Approvals },
  send: (m: ToWorker, transfer?: Transferable[]) => void,
): RequestHandler {
  const { config, audit, log } = context;
  const ctx: MonitorContext = {
    ...context,
    approvals: context.approvals ?? createApprovals(audit, config, log),
  };
  const pending = new Map<number, Pending>();
  // File bytes of running commands, and the worker's word on each file it sent.
  const channels = new Map<number, FileChannel>();
  const sent = new Map<number, (error: string | null) => void>();
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
            const parts = refusedParts(rule, reason);
            send({ type: "final", id: m.id, ran: false, parts, head: audit.head() });
          };
          try {
            checkOrigin(m.origin, config.allowedUsers);
          } catch (e) {
            return refuse("deny.request", (e as Error).message);
          }
          const running = [...pending.values()].filter((p) => !p.held).length;
          if (running >= config.maxConcurrent) {
            // The worker counts too; this holds even if it does not.
            return refuse(
              "deny.busy",
              `${running} commands are running (TIBET_NC_MAX_CONCURRENT)`,
            );
          }
          const channel = fileChannel(m.id, send);
          channels.set(m.id, channel);
          const job = startCommand(ctx, m.origin, {
            progress: (elapsedMs, text) => send({ type: "progress", id: m.id, elapsedMs, text }),
            final: (didRun, parts) =>
              send({ type: "final", id: m.id, ran: didRun, parts, head: audit.head() }),
            held: (parts) => send({ type: "held", id: m.id, parts, head: audit.head() }),
            async sendFile(name, size, body) {
              const answer = new Promise<string | null>((r) => sent.set(m.id, r));
              send({ type: "file-out", id: m.id, name, size });
              try {
                await channel.send(body);
              } catch (e) {
                sent.delete(m.id);
                return (e as Error).message;
              }
              return await answer;
            },
            receiveFile() {
              send({ type: "file-in", id: m.id });
              return channel.receive();
            },
            closeFiles(reason) {
              channel.close(reason);
              sent.get(m.id)?.(reason);
              sent.delete(m.id);
            },
          }, (eventId) => {
            if (ran.has(eventId)) return true;
            remember(eventId);
            return false;
          }, m.attachment);
          pending.set(m.id, job);
          await job.done;
          pending.delete(m.id);
          channel.close("the command has ended");
          channels.delete(m.id);
          return;
        }
        case "file-data":
        case "file-end":
        case "file-ack":
          channels.get(m.id)?.deliver(m);
          return;
        case "file-sent": {
          const resolve = sent.get(m.id);
          sent.delete(m.id);
          resolve?.(typeof m.error === "string" ? m.error.slice(0, 500) : null);
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
