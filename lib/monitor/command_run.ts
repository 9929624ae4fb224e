/**
 * One command in the monitor, from the worker's run request to its final
 * answer: parse the prefixes (`prefixes.ts`), parse, resolve and judge the command
 * (once; each stage of a pipeline), fsync the execute record, run it under the
 * PTY as the exec user (a pipeline's stages connected by the monitor), push
 * its output as it grows, record the result, answer with the provenance line.
 * A screen program's output goes through the terminal emulator and the answer
 * is its screen (`lib/screen/`); `watch=N` goes to `watch_run.ts`.
 * Nothing runs unless its execute record is on disk.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import { AuditUnavailableError } from "../audit/errors.ts";
import type { Config } from "../config/config.ts";
import { checkCommand } from "../policy/check.ts";
import type { Policy } from "../policy/policy_file.ts";
import { childEnv } from "../exec/child_env.ts";
import type { ExecIdentity } from "../exec/exec_user.ts";
import { createOutputBuffer, formatBytes } from "../exec/output.ts";
import { createHash } from "node:crypto";
import { createFullOutput, type FullOutput } from "../exec/full_output.ts";
import { type PipelineHandle, runPipeline } from "../exec/pipeline.ts";
import type { Recorder } from "../recording/recorder.ts";
import type { ReplyParts } from "../worker/reply_parts.ts";
import {
  exitedFacts,
  failedParts,
  notRecorded,
  provenance,
  refusedFacts,
  refusedParts,
  summary,
} from "./answers.ts";
import type { AttachmentInfo, CommandOrigin } from "./protocol.ts";
import { isFileCommand } from "../files/request.ts";
import { runFileCommand } from "./file_run.ts";
import { type Approvals, RULING } from "./approvals.ts";
import { decideHeld, holdForApproval } from "./approval_run.ts";
import { appendAttachment, appendDeny, appendExecute } from "./records.ts";
import { parsePrefixes, SCREEN_DURATION_DEFAULT_S } from "./prefixes.ts";
import { startPushing } from "./push.ts";
import type { Screen } from "../screen/emulator.ts";
import { isScreenCommand } from "../screen/programs.ts";
import { runWatch } from "./watch_run.ts";

export { EDIT_EVERY_MS, STREAM_AFTER_MS } from "./push.ts";

/** The name of the attachment holding a command's complete output. */
export const OUTPUT_FILE = "output.txt";
/** Characters of output shown in one message (Matrix events are at most 64 KiB). */
export const MESSAGE_OUTPUT_CHARS = 8000;
/** Raw bytes of output kept for the reply (head and tail, `output.ts`). */
export const OUTPUT_KEEP_BYTES = 64 * 1024;

/** What the monitor holds for running commands. */
export interface MonitorContext {
  config: Config;
  policy: Policy;
  exec: ExecIdentity;
  audit: AuditLog;
  log: (msg: string) => void;
  /** `config.fileDirs` with every symlink resolved, as far as the agent can see. */
  realFileDirs: string[];
  /** Keeps each command's complete output, encrypted (`TIBET_NC_RECORD_PUBKEY`); absent when off. */
  recorder?: Recorder;
  /** Commands held for a second operator's approval. */
  approvals: Approvals;
  /** Who approved commands run as (`TIBET_NC_APPROVED_EXEC_USER`); absent: `exec`. */
  approvedExec?: ExecIdentity;
}

/** Where a command's answers go. */
export interface CommandSink {
  /** The output so far, pushed at most every {@linkcode EDIT_EVERY_MS}. */
  progress(elapsedMs: number, text: string): void;
  /** The last answer; `ran` is false when the command was refused. */
  final(ran: boolean, parts: ReplyParts): void;
  /** The command waits for approval: how to give it (edited later by progress or final). */
  held(parts: ReplyParts): void;
  /** Has the worker send `body` to the room as the file `name`; resolves to null or why not. */
  sendFile(name: string, size: number, body: ReadableStream<Uint8Array>): Promise<string | null>;
  /** The plaintext of the command's attachment, as the worker decrypts it. */
  receiveFile(): ReadableStream<Uint8Array>;
  /** Ends a transfer in either direction (cancel). */
  closeFiles(reason: string): void;
}

/** A command between its run request and its final answer. */
export interface Pending {
  /** Stops it (before or while it runs, or withdraws it while held); idempotent. */
  cancel(reason: string): void;
  /** True while it waits for approval (it then takes no place among the running). */
  readonly held: boolean;
  /** Settles after the final answer was given. */
  done: Promise<void>;
}

/**
 * Starts one command; `alreadyRecorded` says whether an event id has an
 * execute record (this run's or the log's), so a repeated request never runs twice.
 */
export function startCommand(
  ctx: MonitorContext,
  origin: CommandOrigin,
  sink: CommandSink,
  alreadyRecorded: (eventId: string) => boolean,
  attachment?: AttachmentInfo,
): Pending {
  let cancelReason: string | null = null;
  let handle: PipelineHandle | null = null;
  // What stops the command besides its processes: a transfer, a held request or
  // a watch (one at a time). A cancel that came first applies at once.
  let stopper: ((reason: string) => void) | null = null;
  let held = false;
  const onCancel = (stop: ((reason: string) => void) | null) => {
    stopper = stop;
    if (stop && cancelReason !== null) stop(cancelReason);
  };
  const done = run().catch((e) => {
    ctx.log(`monitor error running ${origin.eventId}: ${(e as Error).stack ?? e}`);
    sink.final(false, { head: `failed: ${(e as Error).message}` });
  });
  return {
    cancel(reason) {
      cancelReason ??= reason;
      handle?.cancel(reason);
      stopper?.(reason);
    },
    get held() {
      return held;
    },
    done,
  };

  async function refuse(rule: string, reason: string): Promise<void> {
    ctx.log(`refused ${origin.eventId} from ${origin.sender}: ${rule}: ${reason}`);
    let tail: string;
    try {
      tail = provenance(await appendDeny(ctx.audit, ctx.config.hostname, origin, rule, reason));
    } catch (e) {
      tail = notRecorded(e);
    }
    sink.final(false, refusedParts(rule, reason, tail));
  }

  async function run(): Promise<void> {
    const { config } = ctx;
    if (alreadyRecorded(origin.eventId)) {
      return await refuse("deny.replay", `${origin.eventId} already ran; an event runs once`);
    }
    const asked = parsePrefixes(origin.text, config);
    if ("rule" in asked) return await refuse(asked.rule, asked.reason);
    const { text, timeoutS } = asked;
    if (isFileCommand(text)) {
      if (asked.watchS !== undefined || asked.durationS !== undefined || asked.screen) {
        return await refuse("deny.file.prefix", "get and put take only timeout=N");
      }
      return await runFileCommand(ctx, origin, text, sink, attachment, onCancel);
    }
    if (attachment) {
      return await refuse(
        "deny.file.attachment",
        "an attachment is taken only with `$ put DIR` as its caption",
      );
    }
    const ruling = RULING.exec(text.trim());
    if (ruling) {
      const verb = ruling[1].toLowerCase() as "approve" | "reject";
      return await decideHeld(ctx, origin, sink, refuse, verb, ruling[2]);
    }
    // L4 step 4: the policy, on the parsed argv after resolving the program.
    const checked = await checkCommand(text, config.binDir, ctx.policy, origin.sender);
    const stages = checked.stages?.map(({ argv, path }) => ({ argv, path: path ?? "" }));
    if (checked.verdict === "deny" || !stages || stages.some((s) => s.path === "")) {
      return await refuse(checked.rule, checked.reason);
    }
    let exec = ctx.exec;
    let grant: AuditRecord | undefined;
    let approvedBy = "", approver = "";
    if (checked.verdict === "approve") {
      const decision = await holdForApproval(
        ctx,
        origin,
        sink,
        checked.rule,
        checked.reason,
        (w) => {
          held = w !== null;
          onCancel(w);
        },
      );
      if (decision === null) return;
      grant = decision.record;
      approver = decision.by;
      approvedBy = `approved by ${approver} · `;
      exec = ctx.approvedExec ?? ctx.exec;
    }
    if (asked.screen && stages.length > 1) {
      return await refuse("deny.screen", "screen=yes takes one command; a pipeline is a stream");
    }
    const isScreen = asked.screen ?? isScreenCommand(
      checked.stages!.map((s) => ({ argv: s.argv, name: s.argv[0], realName: s.realName ?? "" })),
      false,
    );
    if (asked.watchS !== undefined && isScreen) {
      return await refuse(
        "deny.watch",
        `${
          stages[0].argv[0]
        } is a screen program and repaints by itself: use duration=N, not watch=N`,
      );
    }
    // A screen program is stopped after its duration: it would paint until the timeout.
    const durationS = asked.durationS ??
      (isScreen ? Math.min(SCREEN_DURATION_DEFAULT_S, timeoutS) : undefined);
    // L4 step 5: nothing runs unless its record is on disk.
    let record: AuditRecord;
    try {
      record = await appendExecute(ctx.audit, config.hostname, origin, {
        rule: checked.rule,
        timeout_s: timeoutS,
        ...(isScreen ? { screen: true } : {}),
        ...(durationS !== undefined ? { duration_s: durationS } : {}),
        ...(asked.watchS !== undefined
          ? { watch_s: asked.watchS, watch_max_s: config.watchMax }
          : {}),
        // A pipeline names every stage: what ran, and the rule that let it.
        ...(stages.length > 1
          ? {
            stages: checked.stages!.map((s) => ({ program: s.path!, argv: s.argv, rule: s.rule })),
          }
          : {}),
        ...(grant ? { approved_by: approver, runs_as: exec.name } : {}),
      }, grant);
    } catch (e) {
      const why = e instanceof AuditUnavailableError
        ? e.message
        : `audit log error: ${(e as Error).message}`;
      ctx.log(`refused ${origin.eventId}: ${why}`);
      sink.final(false, {
        head: `refused (deny.audit): the audit log cannot be written, so nothing runs: ${why}`,
        answer: refusedFacts("deny.audit"),
      });
      return;
    }
    if (cancelReason !== null) {
      return await finishFailed(record, "cancelled", `${cancelReason} before it started`);
    }

    if (asked.watchS !== undefined) {
      return await runWatch(ctx, origin, sink, {
        text,
        stages,
        record,
        timeoutS,
        watchS: asked.watchS,
        onStop: onCancel,
      });
    }

    const out = createOutputBuffer(OUTPUT_KEEP_BYTES);
    const full = createFullOutput(config.fullOutputBytes);
    // The emulator (@xterm/headless) is loaded by the first screen program, not at start:
    // an idle agent would otherwise hold it in the monitor's heap (issue 19).
    const screen: Screen | null = isScreen
      ? (await import("../screen/emulator.ts")).createScreen()
      : null;
    const started = Date.now();
    let durationHit = false;
    try {
      handle = runPipeline({
        stages,
        env: childEnv({ binDir: config.binDir, home: exec.home, screen: isScreen }),
        cwd: "/",
        // The duration's stop must come first when it equals the timeout.
        timeoutMs: timeoutS * 1000 + (durationS === timeoutS ? 1000 : 0),
        maxOutputBytes: config.maxOutputBytes,
        uid: exec.uid ?? undefined,
        gid: exec.gid ?? undefined,
        eofAtOnce: !isScreen,
      }, (chunk) => {
        out.push(chunk);
        // A screen is never sent as output.txt, so its bytes are kept only to be recorded.
        if (!screen || ctx.recorder) full.push(chunk);
        screen?.push(chunk);
      });
    } catch (e) {
      screen?.dispose();
      return await finishFailed(record, "deny.exec", (e as Error).message);
    }
    const stopAfter = durationS === undefined ? undefined : setTimeout(() => {
      durationHit = true;
      handle?.cancel(`stopped after the ${durationS} s duration, as asked`);
    }, durationS * 1000);

    // Pushed, not polled: the first after STREAM_AFTER_MS, then when the output changed.
    const stopPushing = startPushing(
      () => screen?.render() ?? out.render(MESSAGE_OUTPUT_CHARS),
      sink.progress,
      started,
    );
    let result;
    try {
      result = await handle.done;
      await screen?.settled();
    } catch (e) {
      screen?.dispose();
      return await finishFailed(record, "deny.exec", (e as Error).message);
    } finally {
      clearTimeout(stopAfter);
      stopPushing();
    }
    // A cancel that came during the duration's stop is the operator's, not the duration's.
    durationHit &&= result.cancelReason?.startsWith("stopped after") === true;
    const screenText = screen?.render() ?? null;
    const skipped = screen?.skippedBytes ?? 0;
    screen?.dispose();
    // Before the result record, so that record signs the recording's hash; it never throws.
    const recording = await ctx.recorder?.save(record.seq, full) ?? {};
    let tail: string;
    let resultRecord: AuditRecord | null = null;
    try {
      tail = provenance(
        resultRecord = await ctx.audit.appendResult(record, {
          exit_code: result.code,
          duration_ms: Math.round(result.durationMs),
          outputSha256: out.sha256Hex(),
          eraan: [origin.eventId],
          eromheen: {
            output_bytes: result.totalBytes,
            timed_out: result.timedOut,
            cancelled: result.cancelled && !durationHit,
            ...(durationHit ? { stopped_after_duration_s: durationS! } : {}),
            ...(screen ? { screen_skipped_bytes: skipped } : {}),
            ...(stages.length > 1 ? { stage_exit_codes: result.stageCodes } : {}),
            ...recording,
          },
        }),
      );
    } catch (e) {
      tail = `${provenance(record)} (result not recorded: ${(e as Error).message})`;
    }
    const pre = screenText ?? out.render(MESSAGE_OUTPUT_CHARS);
    let head = approvedBy + summary(result, timeoutS);
    if (durationHit) {
      head = `${approvedBy}stopped after the ${durationS} s duration, as asked · ${
        (result.durationMs / 1000).toFixed(1)
      } s`;
    }
    if (skipped > 0) {
      head += ` · ${
        formatBytes(skipped)
      } of screen updates skipped (the program drew faster than the emulator reads)`;
    }
    // A screen's raw bytes are escape sequences, not text worth a file: the screen is the answer.
    if (!screen && (out.truncated || out.text().length > MESSAGE_OUTPUT_CHARS)) {
      head += ` · ${await attachWhole(resultRecord ?? record, full)}`;
    }
    sink.final(true, { head, pre, tail, answer: exitedFacts(result) });
    full.release();
  }

  /**
   * Sends the complete output (up to TIBET_NC_FULL_OUTPUT_BYTES) as output.txt,
   * recorded first; returns the note for the reply's first line. The bytes are
   * the terminal's, unchanged, so when nothing was cut their SHA-256 is the
   * result record's output hash.
   */
  async function attachWhole(result: AuditRecord, full: FullOutput): Promise<string> {
    const sha256 = createHash("sha256");
    for await (const part of full.stream()) sha256.update(part);
    const file = {
      name: OUTPUT_FILE,
      bytes: full.keptBytes,
      sha256: sha256.digest("hex"),
      result_seq: result.seq,
      truncated: full.truncated,
    };
    try {
      await appendAttachment(ctx.audit, ctx.config.hostname, origin, file);
    } catch (e) {
      return `${OUTPUT_FILE} not sent: it could not be recorded (${(e as Error).message})`;
    }
    const error = await sink.sendFile(OUTPUT_FILE, full.keptBytes, full.stream());
    const cut = full.truncated
      ? `, the first ${formatBytes(full.keptBytes)} (TIBET_NC_FULL_OUTPUT_BYTES)`
      : "";
    return error === null
      ? `complete output in ${OUTPUT_FILE} (${formatBytes(full.keptBytes)}${cut})`
      : `${OUTPUT_FILE} not sent: ${error}`;
  }

  /** A command recorded as run that did not start, or whose run failed. */
  async function finishFailed(record: AuditRecord, rule: string, reason: string): Promise<void> {
    ctx.log(`${origin.eventId} failed: ${rule}: ${reason}`);
    sink.final(true, await failedParts(ctx.audit, record, origin.eventId, rule, reason));
  }
}
