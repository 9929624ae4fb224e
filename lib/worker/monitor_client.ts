/**
 * The Matrix worker's side of the monitor protocol (`lib/monitor/protocol.ts`):
 * one request per command or record, answers pushed back. The worker cannot
 * start a process, write a record or read the signing key; it asks.
 * @module
 */

import type { ChainHead } from "../audit/record.ts";
import type { Unfinished } from "../airlock/replay.ts";
import type { InterruptedAnswer } from "../monitor/interrupted.ts";
import { type FileChannel, fileChannel } from "../monitor/file_channel.ts";
import { FileError } from "../files/request.ts";
import type {
  AttachmentInfo,
  ChainInfo,
  CommandOrigin,
  RecordEntry,
  ToMonitor,
  ToWorker,
} from "../monitor/protocol.ts";
import type { ReplyParts } from "./reply_parts.ts";

/** How a command ended: `ran` is false when the monitor refused it. */
export interface Final {
  ran: boolean;
  parts: ReplyParts;
}

/** A command the monitor has been asked to run. */
export interface RunJob {
  cancel(reason: string): void;
  done: Promise<Final>;
}

/** How a run moves files: what the Matrix side does when the monitor asks. */
export interface RunFiles {
  /** The attachment the command came with (put). */
  attachment?: AttachmentInfo;
  /** Encrypts, uploads and sends `body` to the room as `name` (get, output.txt). */
  send(name: string, size: number, body: ReadableStream<Uint8Array>): Promise<void>;
  /** Downloads and decrypts the attachment; the stream errors if its hash does not match. */
  fetch(): Promise<ReadableStream<Uint8Array>>;
}

/** The monitor, as the handler uses it. */
export interface Monitor {
  /** Records a refusal or an acting built-in; resolves to its provenance line. */
  record(origin: CommandOrigin, entry: RecordEntry): Promise<string>;
  /** Asks the monitor to judge, record and run a command. */
  run(
    origin: CommandOrigin,
    onProgress: (elapsedMs: number, text: string) => void,
    files?: RunFiles,
    onHeld?: (parts: ReplyParts) => void,
  ): RunJob;
  /** What became of an earlier run's unfinished commands (asked once, at start). */
  interrupted(unfinished: Unfinished[]): Promise<InterruptedAnswer[]>;
  /** The chain as of the monitor's last answer. */
  chain(): ChainInfo;
}

/** A monitor client that talks through `post`; feed it the monitor's messages. */
export function monitorClient(
  post: (m: ToMonitor, transfer?: Transferable[]) => void,
  initial: ChainInfo,
): { monitor: Monitor; receive(m: ToWorker): void } {
  let next = 1;
  let chain = initial;
  const waiting = new Map<number, (m: ToWorker) => void>();
  const progress = new Map<number, (elapsedMs: number, text: string) => void>();
  const holds = new Map<number, (parts: ReplyParts) => void>();
  const transfers = new Map<number, { files: RunFiles; channel: FileChannel }>();

  /** The monitor's file requests for a run: each answered, never left waiting. */
  const onFile = (m: ToWorker & { type: "file-out" | "file-in" }) => {
    const t = transfers.get(m.id);
    if (!t) return post({ type: "file-end", id: m.id, error: "no such run" });
    if (m.type === "file-out") {
      t.files.send(String(m.name), Number(m.size), t.channel.receive()).then(
        () => post({ type: "file-sent", id: m.id }),
        (e) => post({ type: "file-sent", id: m.id, error: (e as Error).message }),
      );
    } else {
      t.files.fetch().then(
        (body) => t.channel.send(body),
        (e) =>
          post({
            type: "file-end",
            id: m.id,
            error: (e as Error).message,
            rule: e instanceof FileError ? e.rule : undefined,
          }),
      ).catch(() => {/* the end says why */});
    }
  };
  const ask = (m: ToMonitor & { id: number }) =>
    new Promise<ToWorker>((resolve) => {
      waiting.set(m.id, resolve);
      post(m);
    });
  const monitor: Monitor = {
    async record(origin, entry) {
      const r = await ask({ type: "record", id: next++, origin, entry });
      return r.type === "recorded" ? r.tail : "(not recorded: no answer from the monitor)";
    },
    run(origin, onProgress, files, onHeld) {
      const id = next++;
      progress.set(id, onProgress);
      if (onHeld) holds.set(id, onHeld);
      if (files) transfers.set(id, { files, channel: fileChannel(id, post) });
      const request: ToMonitor = files?.attachment
        ? { type: "run", id, origin, attachment: files.attachment }
        : { type: "run", id, origin };
      const done = ask(request).then((r): Final => {
        progress.delete(id);
        holds.delete(id);
        transfers.get(id)?.channel.close("the command has ended");
        transfers.delete(id);
        return r.type === "final"
          ? { ran: r.ran, parts: r.parts }
          : { ran: false, parts: { head: "failed: no answer from the monitor" } };
      });
      return { cancel: (reason) => post({ type: "cancel", id, reason }), done };
    },
    async interrupted(unfinished) {
      const r = await ask({ type: "interrupted", id: next++, unfinished });
      return r.type === "answers" ? r.answers : [];
    },
    chain: () => chain,
  };
  const setHead = (head: ChainHead) => {
    if (head.seq >= chain.head.seq) chain = { ...chain, head };
  };
  return {
    monitor,
    receive(m) {
      if (m.type === "progress") return progress.get(m.id)?.(m.elapsedMs, m.text);
      if (m.type === "held") {
        setHead(m.head);
        return holds.get(m.id)?.(m.parts);
      }
      if (m.type === "file-out" || m.type === "file-in") return onFile(m);
      if (m.type === "file-data" || m.type === "file-end" || m.type === "file-ack") {
        return transfers.get(m.id)?.channel.deliver(m);
      }
      if (m.type !== "final" && m.type !== "recorded" && m.type !== "answers") return;
      setHead(m.head);
      const resolve = waiting.get(m.id);
      waiting.delete(m.id);
      resolve?.(m);
    },
  };
}
