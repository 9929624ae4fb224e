/**
 * Runs in the Matrix worker's place, with its permissions, under a real
 * monitor: what an attacker who took over the worker's code could do. It tries
 * the audit log and the signing key directly, then sends forged requests, then
 * tries the recording of the honest one, and reports everything as a "fatal" message (the monitor logs it).
 * @module
 */

import type { CommandOrigin, ToMonitor, ToWorker } from "../../lib/monitor/protocol.ts";

const scope = globalThis as unknown as {
  postMessage(m: ToMonitor): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

/** The marker the test looks for in the monitor's log. */
export const REPORT = "FORGING WORKER REPORT ";

function attempt(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    return (e as Error).name;
  }
}

const waiting = new Map<number, (m: ToWorker) => void>();
const ask = (m: ToMonitor & { id: number }) =>
  new Promise<ToWorker>((resolve) => {
    waiting.set(m.id, resolve);
    scope.postMessage(m);
  });
const headOf = (m: ToWorker) =>
  m.type === "final"
    ? `${m.ran ? "ran" : "refused"}: ${m.parts.head}`
    : m.type === "recorded"
    ? m.tail
    : m.type;

scope.onmessage = async (e) => {
  const m = e.data;
  if (m.type !== "start") {
    if ("id" in m && m.type !== "progress") waiting.get(m.id)?.(m);
    return;
  }
  const dir = m.config.stateDir;
  const files = {
    writeAudit: attempt(() => Deno.openSync(`${dir}/audit.jsonl`, { write: true, append: true })),
    createAudit: attempt(() => Deno.writeTextFileSync(`${dir}/audit.jsonl.new`, "x")),
    writeTornSide: attempt(() => Deno.writeTextFileSync(`${dir}/audit.jsonl.torn-1`, "x")),
    writeBrainQueue: attempt(() => Deno.writeTextFileSync(`${dir}/brain-queue.jsonl`, "x")),
    writeKey: attempt(() => Deno.openSync(`${dir}/signing_key.jwk`, { write: true })),
    readKey: attempt(() => Deno.readTextFileSync(`${dir}/signing_key.jwk`)),
    renameKey: attempt(() => Deno.renameSync(`${dir}/signing_key.jwk`, `${dir}/crypto/k`)),
    writeOwnCrypto: attempt(() => {
      Deno.mkdirSync(`${dir}/crypto`, { recursive: true });
      Deno.writeTextFileSync(`${dir}/crypto/probe`, "x");
    }),
  };
  const op = m.config.allowedUsers[0];
  const origin = (eventId: string, text: string, sender = op): CommandOrigin => ({
    sender,
    roomId: "!forged:localhost",
    eventId,
    text,
  });
  const requests = {
    honest: headOf(await ask({ type: "run", id: 1, origin: origin("$honest", "echo honest") })),
    replayed: headOf(await ask({ type: "run", id: 2, origin: origin("$honest", "canary") })),
    asStranger: headOf(
      await ask({
        type: "run",
        id: 3,
        origin: origin("$stranger", "canary", "@mallory:localhost"),
      }),
    ),
    monitorRule: headOf(
      await ask({
        type: "record",
        id: 4,
        origin: origin("$allowrule", "canary"),
        entry: { kind: "deny", rule: "allow.default", reason: "forged" },
      }),
    ),
    // The test breaks the log when the monitor logs the refusal above.
    unrecordable: headOf(await ask({ type: "run", id: 5, origin: origin("$norecord", "canary") })),
  };
  // After the honest command ran, so its recording (execute record #1) is there to try.
  // The file dirs are the exec user's, reached only through the monitor's helpers.
  const fileDir = m.config.fileDirs[0];
  const fileDirs = {
    read: attempt(() => Deno.readTextFileSync(`${fileDir}/inside.txt`)),
    write: attempt(() => Deno.writeTextFileSync(`${fileDir}/forged.txt`, "x")),
  };
  const recordings = {
    list: attempt(() => [...Deno.readDirSync(`${dir}/recordings`)]),
    read: attempt(() => Deno.readFileSync(`${dir}/recordings/1.age`)),
    write: attempt(() => Deno.writeTextFileSync(`${dir}/recordings/1.age`, "x")),
    remove: attempt(() => Deno.removeSync(`${dir}/recordings/1.age`)),
    create: attempt(() => Deno.writeTextFileSync(`${dir}/recordings/99.age`, "x")),
  };
  scope.postMessage({
    type: "fatal",
    message: REPORT + JSON.stringify({ files, requests, recordings, fileDirs }),
  });
};
