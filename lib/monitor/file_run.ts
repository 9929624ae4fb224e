/**
 * `get PATH` and `put TARGET` in the monitor, from the run request to the final
 * answer: judged (files on, path inside the file dirs, name, size), the execute
 * record on disk first, then the transfer as the exec user (`lib/files/`), and
 * a result record binding the real path, the size and the SHA-256 of the
 * plaintext. The bytes pass through the worker, which encrypts and uploads
 * (get) or downloads and decrypts (put); it never opens a file.
 * @module
 */

import { createHash } from "node:crypto";
import type { AuditRecord } from "../audit/log.ts";
import { AuditUnavailableError } from "../audit/errors.ts";
import { formatBytes } from "../exec/output.ts";
import { FileError, openForGet, prepareForPut } from "../files/exec_file.ts";
import { badFileName, parseFileRequest, pathRefusal } from "../files/request.ts";
import type { AttachmentInfo, CommandOrigin } from "./protocol.ts";
import { failedParts, notRecorded, provenance, refusedFacts, refusedParts } from "./answers.ts";
import { appendDeny, appendExecute } from "./records.ts";
import type { CommandSink, MonitorContext } from "./command_run.ts";

/** Counts and hashes what passes; errors past `max` bytes. */
function meter(max: number, what: string) {
  const hash = createHash("sha256");
  let bytes = 0;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      bytes += chunk.length;
      if (bytes > max) {
        throw new FileError(
          "deny.file.size",
          `${what} is over ${max} bytes (TIBET_NC_MAX_FILE_BYTES); nothing was kept`,
        );
      }
      hash.update(chunk);
      c.enqueue(chunk);
    },
  });
  return { stream, bytes: () => bytes, sha256: () => hash.digest("hex") };
}

/**
 * Runs one file command; `onCancel` registers what stops it. The answer always
 * goes to `sink.final`, a refusal included.
 */
export async function runFileCommand(
  ctx: MonitorContext,
  origin: CommandOrigin,
  text: string,
  sink: CommandSink,
  attachment: AttachmentInfo | undefined,
  onCancel: (stop: (reason: string) => void) => void,
): Promise<void> {
  const { config, audit } = ctx;
  const user = { uid: ctx.exec.uid ?? undefined, gid: ctx.exec.gid ?? undefined };
  const dirs = [...new Set([...config.fileDirs, ...ctx.realFileDirs])];
  const started = Date.now();

  const refuse = async (rule: string, reason: string) => {
    ctx.log(`refused ${origin.eventId} from ${origin.sender}: ${rule}: ${reason}`);
    let tail: string;
    try {
      tail = provenance(await appendDeny(audit, config.hostname, origin, rule, reason));
    } catch (e) {
      tail = notRecorded(e);
    }
    sink.final(false, refusedParts(rule, reason, tail));
  };
  const failed = async (record: AuditRecord, rule: string, reason: string) => {
    ctx.log(`${origin.eventId} failed: ${rule}: ${reason}`);
    sink.final(true, await failedParts(audit, record, origin.eventId, rule, reason));
  };
  const execute = async (context: Record<string, string | number | boolean>) => {
    try {
      return await appendExecute(audit, config.hostname, origin, context);
    } catch (e) {
      const why = e instanceof AuditUnavailableError
        ? e.message
        : `audit log error: ${(e as Error).message}`;
      sink.final(false, {
        head: `refused (deny.audit): the audit log cannot be written, so nothing runs: ${why}`,
        answer: refusedFacts("deny.audit"),
      });
      return null;
    }
  };
  const done = async (
    record: AuditRecord,
    op: "get" | "put",
    path: string,
    bytes: number,
    sha256: string,
  ) => {
    let tail: string;
    try {
      tail = provenance(
        await audit.appendResult(record, {
          exit_code: 0,
          duration_ms: Date.now() - started,
          outputSha256: sha256,
          eraan: [origin.eventId],
          eromheen: { file: { op, path, bytes, sha256 } },
        }),
      );
    } catch (e) {
      tail = `${provenance(record)} (result not recorded: ${(e as Error).message})`;
    }
    const verb = op === "get" ? "sent" : "wrote";
    sink.final(true, {
      head: `${verb} ${path} · ${formatBytes(bytes)} · sha256 ${sha256}`,
      tail,
      answer: { status: "done", duration_ms: Date.now() - started },
    });
  };
  const judgeReal = (real: string) => {
    const r = pathRefusal(real, ctx.realFileDirs);
    return r ? new FileError(r.rule, `${real} (the real path): ${r.reason}`) : null;
  };

  const req = parseFileRequest(text);
  if ("rule" in req) return await refuse(req.rule, req.reason);
  let cancelled: string | null = null;

  if (req.op === "get") {
    const lexical = pathRefusal(req.path, dirs);
    if (lexical) return await refuse(lexical.rule, lexical.reason);
    const record = await execute({ rule: "allow.file", file_op: "get", path: req.path });
    if (record === null) return;
    let stop = (_: string) => {};
    onCancel((reason) => {
      cancelled = reason;
      stop(reason);
      sink.closeFiles(reason);
    });
    try {
      const opened = await openForGet(user, req.path, config.maxFileBytes, judgeReal);
      stop = () => opened.close();
      if (cancelled !== null) opened.close();
      if (opened.size === 0) {
        opened.close();
        return await failed(
          record,
          "deny.file.empty",
          `${opened.realPath} is empty: nothing to send`,
        );
      }
      const m = meter(config.maxFileBytes, opened.realPath);
      const name = opened.realPath.slice(opened.realPath.lastIndexOf("/") + 1);
      const error = await sink.sendFile(name, opened.size, opened.body.pipeThrough(m.stream));
      if (error !== null) return await failed(record, "deny.file.send", cancelled ?? error);
      return await done(record, "get", opened.realPath, m.bytes(), m.sha256());
    } catch (e) {
      const rule = e instanceof FileError ? e.rule : "deny.file.read";
      return await failed(record, rule, cancelled ?? (e as Error).message);
    }
  }

  // put
  if (!attachment) {
    return await refuse(
      "deny.file.attachment",
      "put writes an attached file: send the file with `$ put DIR` as its caption",
    );
  }
  if (!attachment.encrypted) {
    return await refuse(
      "deny.file.unencrypted",
      "the attachment was sent unencrypted: the homeserver could read or change it; send it in an encrypted room",
    );
  }
  if (attachment.unusable) {
    return await refuse("deny.file.attachment", String(attachment.unusable).slice(0, 300));
  }
  const badName = badFileName(attachment.name);
  if (badName) return await refuse("deny.file.name", badName);
  if (attachment.size === 0) {
    return await refuse("deny.file.empty", "the attachment is empty (0 bytes): nothing to write");
  }
  if (attachment.size > config.maxFileBytes) {
    return await refuse(
      "deny.file.size",
      `the attachment is ${attachment.size} bytes; the limit is ${config.maxFileBytes} (TIBET_NC_MAX_FILE_BYTES)`,
    );
  }
  const lexical = pathRefusal(req.target, dirs);
  if (lexical) return await refuse(lexical.rule, lexical.reason);
  const record = await execute({
    rule: "allow.file",
    file_op: "put",
    target: req.target,
    name: attachment.name,
    size: attachment.size,
    replace: req.replace,
  });
  if (record === null) return;
  let prepared;
  try {
    prepared = await prepareForPut(user, req.target, attachment.name);
  } catch (e) {
    return await failed(record, (e as FileError).rule ?? "deny.file.path", (e as Error).message);
  }
  const path = `${prepared.realDir}/${prepared.name}`.replace(/^\/\//, "/");
  const refusal = judgeReal(path)?.message ?? badFileName(prepared.name);
  const stopWith = async (rule: string, reason: string) => {
    await prepared.abort();
    return await failed(record, rule, reason);
  };
  if (refusal) return await stopWith(judgeReal(path)?.rule ?? "deny.file.name", refusal);
  if (prepared.exists && !req.replace) {
    return await stopWith(
      "deny.file.exists",
      `${path} exists; send the file with \`$ put --replace ${req.target}\` to overwrite it`,
    );
  }
  const m = meter(config.maxFileBytes, "the attachment");
  const body = sink.receiveFile();
  onCancel((reason) => {
    cancelled = reason;
    sink.closeFiles(reason);
  });
  try {
    await prepared.write(body.pipeThrough(m.stream));
    if (m.bytes() === 0) {
      return await stopWith("deny.file.empty", "the attachment is empty: nothing was written");
    }
    await prepared.commit(req.replace);
  } catch (e) {
    const rule = e instanceof FileError ? e.rule : "deny.file.hash";
    return await failed(record, rule, cancelled ?? (e as Error).message);
  }
  return await done(record, "put", path, m.bytes(), m.sha256());
}
