import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/config.ts";
import { agentPermissions, requestHandler } from "../lib/monitor/monitor.ts";
import { loadPolicy } from "../lib/airlock/policy.ts";
import type { ToAgent } from "../lib/monitor/protocol.ts";
import { makeBinDir } from "./support/fixture.ts";

function listen(): { port: number; close(): void } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => new Response("hi"),
  );
  return { port: server.addr.port, close: () => ac.abort() };
}

Deno.test("the agent Worker can reach only its homeserver and state dir: no other host, no process, no file, no env", async () => {
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
      deno: { permissions: agentPermissions(config) },
    } as WorkerOptions);
    const report = await new Promise<Record<string, string>>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({
        allowedUrl: `http://127.0.0.1:${homeserver.port}/`,
        otherUrl: `http://127.0.0.1:${other.port}/`,
        stateDir,
      });
    });
    worker.terminate();
    assert.deepEqual(report, {
      fetchHomeserver: "ok",
      fetchOther: "NotCapable",
      spawnShell: "NotCapable",
      spawnScript: "NotCapable",
      kill: "NotCapable",
      readEtc: "NotCapable",
      writeTmp: "NotCapable",
      writeState: "ok",
      env: "NotCapable",
      ffi: "NotCapable",
    });
  } finally {
    homeserver.close();
    other.close();
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("the monitor judges a run request again: what the policy refuses never runs, even if the agent asks", async () => {
  const binDir = await makeBinDir(["echo"]);
  const markerDir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${binDir}/canary`, `#!/bin/sh\n: > '${markerDir}/ran'\n`, {
    mode: 0o755,
  });
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
  const sent: ToAgent[] = [];
  const exec = { uid: null, gid: null, name: "self", home: "/tmp", warning: null };
  const monitor = requestHandler(config, policy, exec, (m) => sent.push(m), () => {});
  const requests = [
    `canary`,
    `innocent -c ': > ${markerDir}/ran'`,
    `/bin/sh -c 'touch ${markerDir}/ran'`,
    `echo x ; canary`,
  ];
  for (const [i, text] of requests.entries()) {
    await monitor.handle({ type: "run", id: i, text, eventId: `$e${i}`, timeoutMs: 5000 });
  }
  assert.equal(sent.length, requests.length);
  for (const m of sent) assert.equal(m.type, "failed", JSON.stringify(m));
  await monitor.handle({
    type: "run",
    id: 99,
    text: "echo allowed",
    eventId: "$ok",
    timeoutMs: 5000,
  });
  const ok = sent.at(-1)!;
  assert.equal(ok.type, "done");
  assert.match((ok as { text: string }).text, /allowed/);
  assert.equal(await Deno.stat(`${markerDir}/ran`).then(() => true, () => false), false);
  await Deno.remove(binDir, { recursive: true });
  await Deno.remove(markerDir, { recursive: true });
});
