import assert from "node:assert/strict";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { loadConfig } from "../lib/config/config.ts";
import { workerPermissions } from "../lib/monitor/permissions.ts";
import { runMonitor } from "../lib/monitor/monitor.ts";
import { requestHandler } from "../lib/monitor/requests.ts";
import { loadPolicy } from "../lib/policy/policy_file.ts";
import { openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import type { ToWorker } from "../lib/monitor/protocol.ts";
import { REPORT } from "./support/forging_worker.ts";
import { makeBinDir } from "./support/fixture.ts";
import { LIBC_PATHS, libcPath } from "../lib/exec/libc.ts";
import { startTaskArgs } from "./support/agent_process.ts";

function listen(): { port: number; close(): void } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => new Response("hi"),
  );
  return { port: server.addr.port, close: () => ac.abort() };
}

Deno.test("the Matrix worker can reach only its homeserver and its own state entries: no other host, no process, no file, no env", async () => {
  const homeserver = listen();
  const other = listen();
  const stateDir = await Deno.makeTempDir();
  try {
    const config = loadConfig({
      MATRIX_HOMESERVER: `http://127.0.0.1:${homeserver.port}`,
      TIBET_NC_USER_ID: "@agent:localhost",
      TIBET_NC_ACCESS_TOKEN: "token",
      TIBET_NC_ALLOWED_USERS: "@op:localhost",
      TIBET_NC_STATE_DIR: stateDir,
    });
    const worker = new Worker(new URL("./support/sandbox_probe.ts", import.meta.url).href, {
      type: "module",
      deno: { permissions: workerPermissions(config) },
    } as WorkerOptions);
    const report = await new Promise<Record<string, string>>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({
        allowedUrl: `http://127.0.0.1:${homeserver.port}/`,
        otherUrl: `http://127.0.0.1:${other.port}/`,
        stateDir,
        // The library the monitor itself opens for commands' terminals.
        libcPath: libcPath(),
      });
    });
    worker.terminate();
    assert.deepEqual(report, {
      fetchHomeserver: "ok",
      fetchOther: "NotCapable",
      spawnShell: "NotCapable",
      spawnSetpriv: "NotCapable",
      kill: "NotCapable",
      readEtc: "NotCapable",
      writeTmp: "NotCapable",
      writeOwnState: "ok",
      writeOtherState: "NotCapable",
      env: "NotCapable",
      ffi: "NotCapable",
    });
  } finally {
    homeserver.close();
    other.close();
    await Deno.remove(stateDir, { recursive: true });
  }
});

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

async function canaryBin(markerDir: string): Promise<string> {
  const binDir = await makeBinDir(["echo"]);
  await Deno.writeTextFile(`${binDir}/canary`, `#!/bin/sh\n: > '${markerDir}/ran'\n`, {
    mode: 0o755,
  });
  return binDir;
}

Deno.test("the monitor judges every run request itself: what the policy refuses never runs, even if the worker asks", async () => {
  const markerDir = await Deno.makeTempDir();
  const binDir = await canaryBin(markerDir);
  await Deno.symlink("/bin/sh", `${binDir}/innocent`); // a shell under a harmless name
  const policyFile = `${markerDir}/policy.json`;
  await Deno.writeTextFile(
    policyFile,
    JSON.stringify({ mode: "denylist", allow: [], deny: ["canary **"] }),
  );
  const config = loadConfig({
    MATRIX_HOMESERVER: "http://127.0.0.1:9",
    TIBET_NC_USER_ID: "@agent:localhost",
    TIBET_NC_ACCESS_TOKEN: "token",
    TIBET_NC_ALLOWED_USERS: "@op:localhost",
    TIBET_NC_BIN_DIR: binDir,
    TIBET_NC_EXEC_AS_SELF: "yes",
  });
  const policy = await loadPolicy(policyFile);
  const key = await loadOrCreateSigningKey(`${markerDir}/signing_key.jwk`);
  const audit = await openAuditLog(`${markerDir}/audit.jsonl`, key);
  const sent: ToWorker[] = [];
  const exec = { uid: null, gid: null, name: "self", home: "/tmp" };
  const monitor = requestHandler(
    { config, policy, exec, audit, log: () => {}, realFileDirs: [] },
    (m) => sent.push(m),
  );
  const requests = [
    `canary`,
    `innocent -c ': > ${markerDir}/ran'`,
    `/bin/sh -c 'touch ${markerDir}/ran'`,
    `echo x ; canary`,
    `timeout=99999 canary`,
  ];
  const origin = (i: number, text: string) => ({
    sender: "@op:localhost",
    roomId: "!r:localhost",
    eventId: `$e${i}`,
    text,
  });
  for (const [i, text] of requests.entries()) {
    await monitor.handle({ type: "run", id: i, origin: origin(i, text) });
  }
  assert.equal(sent.length, requests.length);
  for (const m of sent) {
    assert.ok(m.type === "final" && !m.ran, JSON.stringify(m));
    assert.match(m.parts.head!, /^refused \(deny\./);
    assert.match(m.parts.tail!, /^TIBET: .* \| #\d+$/, "each refusal is recorded");
  }
  await monitor.handle({ type: "run", id: 99, origin: origin(99, "echo allowed") });
  const ok = sent.at(-1)!;
  assert.ok(ok.type === "final" && ok.ran, JSON.stringify(ok));
  assert.match(ok.parts.pre!, /allowed/);
  assert.match(ok.parts.head!, /^exit 0/);
  assert.equal(await exists(`${markerDir}/ran`), false);
  await audit.close();
  const lines = (await Deno.readTextFile(`${markerDir}/audit.jsonl`)).trimEnd().split("\n");
  const types = lines.map((l) => JSON.parse(l).token.token_type);
  assert.deepEqual(types, [
    ...requests.map(() => "nc.airlock.deny"),
    "nc.command.execute",
    "nc.command.result",
  ]);
  await Deno.remove(binDir, { recursive: true });
  await Deno.remove(markerDir, { recursive: true });
});

Deno.test("from inside the running Matrix worker: no write to the audit log or key, no key read, no recording or file dir reached, forged requests refused", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "tibet-nc-state-" });
  const markerDir = await Deno.makeTempDir();
  const binDir = await canaryBin(markerDir);
  const log = `${stateDir}/audit.jsonl`;
  const fileDir = await Deno.makeTempDir({ prefix: "tibet-nc-files-" });
  await Deno.writeTextFile(`${fileDir}/inside.txt`, "a file get may send");
  try {
    const config = loadConfig({
      MATRIX_HOMESERVER: "http://127.0.0.1:9",
      TIBET_NC_USER_ID: "@agent:localhost",
      TIBET_NC_ACCESS_TOKEN: "token",
      TIBET_NC_ALLOWED_USERS: "@op:localhost",
      TIBET_NC_STATE_DIR: stateDir,
      TIBET_NC_BIN_DIR: binDir,
      TIBET_NC_EXEC_AS_SELF: "yes",
      TIBET_NC_FILE_DIRS: fileDir,
      TIBET_NC_RECORD_PUBKEY: await identityToRecipient(await generateX25519Identity()),
    });
    const lines: string[] = [];
    const onLog = (line: string) => {
      lines.push(line);
      // Someone else writes the log: from here on the monitor can record nothing.
      if (line.includes("monitor refused record request")) {
        Deno.writeTextFileSync(log, "tampered\n", { append: true });
      }
    };
    const code = await runMonitor(config, new Promise(() => {}), onLog, {
      workerUrl: new URL("./support/forging_worker.ts", import.meta.url).href,
    });
    assert.equal(code, 1);
    const line = lines.find((l) => l.includes(REPORT));
    assert.ok(line, lines.join("\n"));
    const report = JSON.parse(line.slice(line.indexOf(REPORT) + REPORT.length));
    assert.deepEqual(report.files, {
      writeAudit: "NotCapable",
      createAudit: "NotCapable",
      writeTornSide: "NotCapable",
      writeBrainQueue: "NotCapable",
      writeKey: "NotCapable",
      readKey: "NotCapable",
      renameKey: "NotCapable",
      writeOwnCrypto: "ok",
    });
    assert.deepEqual(report.recordings, {
      list: "NotCapable",
      read: "NotCapable",
      write: "NotCapable",
      remove: "NotCapable",
      create: "NotCapable",
    });
    assert.deepEqual(report.fileDirs, { read: "NotCapable", write: "NotCapable" });
    assert.deepEqual([...Deno.readDirSync(fileDir)].map((e) => e.name), ["inside.txt"]);
    const recorded = (await Deno.readFile(`${stateDir}/recordings/1.age`)).length;
    assert.ok(recorded > 0, "the honest command was recorded, and the worker did not reach it");
    assert.deepEqual([...Deno.readDirSync(`${stateDir}/recordings`)].map((e) => e.name), ["1.age"]);
    const r = report.requests;
    assert.match(r.honest, /^ran: exit 0/);
    assert.match(r.replayed, /^refused: refused \(deny\.replay\)/);
    assert.match(r.asStranger, /^refused: refused \(deny\.request\): @mallory:localhost is not/);
    assert.match(r.monitorRule, /^\(not recorded: rule "allow\.default" is not the worker's\)$/);
    assert.match(r.unrecordable, /^refused: refused \(deny\.audit\)/);
    assert.equal(await exists(`${markerDir}/ran`), false, "a forged request ran the canary");
    const records = (await Deno.readTextFile(log)).split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l).token);
    const named = (id: string) => records.filter((t) => t.eraan.includes(id));
    assert.deepEqual(named("$honest").map((t) => t.token_type), [
      "nc.command.execute",
      "nc.command.result",
      "nc.airlock.deny", // the replay, refused and recorded
    ]);
    for (const id of ["$stranger", "$allowrule", "$norecord"]) assert.deepEqual(named(id), []);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
    await Deno.remove(markerDir, { recursive: true });
    await Deno.remove(binDir, { recursive: true });
    await Deno.remove(fileDir, { recursive: true });
  }
});

Deno.test("the agent may open only libc through FFI, at the paths the runner looks in", async () => {
  const words = (await startTaskArgs()).filter((w) => w.startsWith("--allow-ffi"));
  assert.deepEqual(words, [`--allow-ffi=${LIBC_PATHS.join(",")}`]);
  assert.ok(libcPath() !== undefined, `no libc at ${LIBC_PATHS.join(", ")} on this machine`);
});
