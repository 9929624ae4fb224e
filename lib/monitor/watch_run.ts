/**
 * `watch=N CMD`: runs CMD every N seconds (start to start; a run longer than N
 * is followed at once by the next) and edits one reply with the newest output
 * and the time of its run, until `cancel` or TIBET_NC_WATCH_MAX. It is one run
 * request and one job from the worker's side, so it counts against
 * TIBET_NC_MAX_CONCURRENT and `jobs` lists it.
 *
 * Records: one execute record for the watch (with `watch_s` and `watch_max_s`),
 * written before the first run, and one result record when it ends, with the
 * number of runs, how many ended with each exit status, and the SHA-256 of the
 * last run's output. Every run after the first is judged again (the bin dir or
 * policy file may have changed); a run the policy now refuses, or one that
 * resolves to another program than the record names, ends the watch, and the
 * result record says why. A record per run would put up to
 * TIBET_NC_WATCH_MAX / 2 pairs of records in the log for one operator message.
 * @module
 */

import type { AuditRecord } from "../audit/log.ts";
import { childEnv } from "../exec/child_env.ts";
import { createOutputBuffer, type OutputBuffer } from "../exec/output.ts";
import {
  type PipelineHandle,
  type PipelineResult,
  runPipeline,
  type Stage,
} from "../exec/pipeline.ts";
import { checkCommand } from "../policy/check.ts";
import type { CommandOrigin } from "./protocol.ts";
import { exitedFacts, provenance, summary } from "./answers.ts";
import {
  type CommandSink,
  MESSAGE_OUTPUT_CHARS,
  type MonitorContext,
  OUTPUT_KEEP_BYTES,
} from "./command_run.ts";
import { startPushing } from "./push.ts";

/** What a watch runs: the command as judged and recorded. */
export interface WatchRequest {
  text: string;
  stages: Stage[];
  /** The watch's execute record. */
  record: AuditRecord;
  /** Limit of one run. */
  timeoutS: number;
  watchS: number;
  /** Hands over the function that stops the watch (cancel). */
  onStop: (stop: (reason: string) => void) => void;
}

/** The time of a run as shown in the reply, UTC to the second. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

/** Runs the watch of `req` to its end and gives the final answer. */
export async function runWatch(
  ctx: MonitorContext,
  origin: CommandOrigin,
  sink: CommandSink,
  req: WatchRequest,
): Promise<void> {
  const { config } = ctx;
  const started = Date.now();
  const deadline = started + config.watchMax * 1000;
  let stopReason: string | null = null;
  let handle: PipelineHandle | null = null;
  let wake: (() => void) | null = null;
  req.onStop((reason) => {
    stopReason ??= reason;
    handle?.cancel(reason);
    wake?.();
  });
  const codes: Record<string, number> = {};
  let runs = 0;
  let last: { out: OutputBuffer; result: PipelineResult; at: number } | null = null;
  let shown = "";
  const show = (): string => shown || "(the first run has not ended yet)";
  // As a command's output: the first edit after STREAM_AFTER_MS, then at most every EDIT_EVERY_MS.
  const stopPushing = startPushing(show, sink.progress, started);
  try {
    for (;;) {
      if (stopReason !== null) break;
      if (runs > 0) {
        const again = await checkCommand(req.text, config.binDir, ctx.policy);
        const paths = again.stages?.map((s) => s.path ?? "");
        if (
          again.verdict === "deny" || paths?.join("\n") !== req.stages.map((s) => s.path).join("\n")
        ) {
          stopReason = again.verdict === "deny"
            ? `run ${runs + 1} refused (${again.rule}): ${again.reason}`
            : `run ${
              runs + 1
            } would run another program than the record names (the bin dir changed)`;
          break;
        }
      }
      const at = Date.now();
      const out = createOutputBuffer(OUTPUT_KEEP_BYTES);
      handle = runPipeline({
        stages: req.stages,
        env: childEnv({ binDir: config.binDir, home: ctx.exec.home }),
        cwd: "/",
        timeoutMs: req.timeoutS * 1000,
        maxOutputBytes: config.maxOutputBytes,
        uid: ctx.exec.uid ?? undefined,
        gid: ctx.exec.gid ?? undefined,
      }, (chunk) => out.push(chunk));
      const result = await handle.done;
      handle = null;
      runs++;
      const code = String(result.code ?? "?");
      codes[code] = (codes[code] ?? 0) + 1;
      last = { out, result, at };
      shown = `every ${req.watchS} s · run ${runs} at ${stamp(at)} · ${
        summary(result, req.timeoutS)
      }\n${out.render(MESSAGE_OUTPUT_CHARS - 200)}`;
      if (stopReason !== null) break;
      const next = at + req.watchS * 1000;
      if (next >= deadline) {
        stopReason = `stopped after TIBET_NC_WATCH_MAX (${config.watchMax} s)`;
        break;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, next - Date.now()));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  } catch (e) {
    stopReason = `run ${runs + 1} failed: ${(e as Error).message}`;
  } finally {
    stopPushing();
  }
  let tail: string;
  try {
    tail = provenance(
      await ctx.audit.appendResult(req.record, {
        exit_code: last?.result.code ?? null,
        duration_ms: Date.now() - started,
        ...(last ? { outputSha256: last.out.sha256Hex() } : {}),
        eraan: [origin.eventId],
        eromheen: { watch_runs: runs, watch_exit_codes: codes, stopped: stopReason ?? "" },
      }),
    );
  } catch (e) {
    tail = `${provenance(req.record)} (result not recorded: ${(e as Error).message})`;
  }
  const head = `watch ended after ${runs} run${runs === 1 ? "" : "s"} every ${req.watchS} s: ${
    stopReason ?? "stopped"
  }`;
  const answer = last ? { ...exitedFacts(last.result), duration_ms: Date.now() - started } : {
    status: "failed" as const,
  };
  sink.final(true, { head, pre: shown === "" ? undefined : shown, tail, answer });
}
