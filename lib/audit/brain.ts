/**
 * Emission of TIBET tokens to `${BRAIN_API_BASE}/api/protocol/send`, as the
 * original tibet-nc did, from a durable queue: a record is
 * queued with one append and sent in the background with retries and backoff, so
 * a slow or absent endpoint never delays or fails a command, and nothing queued
 * is lost across restarts.
 * @module
 */

import type { AuditLog } from "./log.ts";
import type { AuditRecord } from "./record.ts";

/** The body the original sends, plus the whole token. */
export interface BrainMessage {
  protocol: "matrix";
  sender_id: string;
  recipient_id: string;
  intent: string;
  content: string;
  metadata: Record<string, unknown>;
  token: AuditRecord["token"];
}

/** A queue of messages for the endpoint. */
export interface BrainQueue {
  /** Queues the message for a record; returns at once. */
  enqueue(record: AuditRecord): void;
  /** Messages not yet accepted by the endpoint. */
  pending(): number;
  /** Stops sending (what is queued stays on disk). */
  close(): void;
}

const MAX_BACKOFF_MS = 5 * 60_000;

/** Builds the message for one audit record. */
export function brainMessage(record: AuditRecord, hostname: string): BrainMessage {
  const action = record.token.token_type.replace(/^nc\./, "");
  return {
    protocol: "matrix",
    sender_id: record.token.actor,
    recipient_id: `tibet-nc@${hostname}`,
    intent: `nc.${action}`,
    content: record.token.erin,
    metadata: {
      hostname,
      l4_state: record.l4,
      seq: record.seq,
      action,
      transport: "matrix-e2ee",
      service: "tibet-nc",
    },
    token: record.token,
  };
}

/**
 * Opens the queue file (0600) and starts sending to `base`; the monitor runs it,
 * so the Matrix worker needs no route to the endpoint.
 */
export function openBrainQueue(
  base: string,
  queuePath: string,
  hostname: string,
  log: (msg: string) => void,
): BrainQueue {
  const url = `${base.replace(/\/+$/, "")}/api/protocol/send`;
  let queue: string[] = [];
  try {
    queue = Deno.readTextFileSync(queuePath).split("\n").filter((l) => {
      try {
        JSON.parse(l);
        return true;
      } catch {
        return false; // a torn last line
      }
    });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const rewrite = () => {
    const tmp = `${queuePath}.tmp`;
    Deno.writeTextFileSync(tmp, queue.map((l) => l + "\n").join(""), { mode: 0o600 });
    Deno.renameSync(tmp, queuePath);
  };
  rewrite();

  let closed = false;
  let backoff = 1000;
  let wake: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      wake = r;
      timer = setTimeout(r, ms);
    });

  (async () => {
    while (!closed) {
      if (queue.length === 0) {
        await sleep(60_000);
        continue;
      }
      try {
        const r = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: queue[0],
          signal: AbortSignal.timeout(15_000),
        });
        await r.body?.cancel();
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        queue.shift();
        rewrite();
        backoff = 1000;
      } catch (e) {
        log(
          `BRAIN_API_BASE: sending failed (${
            (e as Error).message
          }); ${queue.length} queued, retry in ${Math.round(backoff / 1000)} s`,
        );
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  })();

  return {
    enqueue(record) {
      const line = JSON.stringify(brainMessage(record, hostname));
      queue.push(line);
      try {
        Deno.writeTextFileSync(queuePath, line + "\n", { append: true, mode: 0o600 });
      } catch (e) {
        log(`BRAIN_API_BASE: cannot queue on disk (${(e as Error).message}); kept in memory`);
      }
      if (queue.length === 1) {
        clearTimeout(timer);
        wake?.();
      }
    },
    pending: () => queue.length,
    close() {
      closed = true;
      clearTimeout(timer);
      wake?.();
    },
  };
}

/** The audit log, with every appended record also queued for the endpoint. */
export function emitting(audit: AuditLog, queue: BrainQueue): AuditLog {
  return {
    get path() {
      return audit.path;
    },
    get chainId() {
      return audit.chainId;
    },
    get pubkeyHex() {
      return audit.pubkeyHex;
    },
    get recovered() {
      return audit.recovered;
    },
    head: () => audit.head(),
    async append(fields) {
      const r = await audit.append(fields);
      queue.enqueue(r);
      return r;
    },
    async appendResult(command, result) {
      const r = await audit.appendResult(command, result);
      queue.enqueue(r);
      return r;
    },
    async close() {
      queue.close();
      await audit.close();
    },
  };
}
