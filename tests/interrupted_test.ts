import assert from "node:assert/strict";
import { openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import { verifyLogFile } from "../lib/audit/verify.ts";
import { recordsByEvent } from "../lib/audit/by_event.ts";
import { interruptedAnswer } from "../lib/monitor/interrupted.ts";
import type { Unfinished } from "../lib/airlock/replay.ts";

async function setUp() {
  const dir = await Deno.makeTempDir();
  const key = await loadOrCreateSigningKey(`${dir}/signing_key.jwk`);
  const audit = await openAuditLog(`${dir}/audit.jsonl`, key);
  const u = (id: string): Unfinished => ({
    eventId: id,
    originTs: Date.now(),
    roomId: "!r:hs",
    sender: "@op:hs",
  });
  const base = { actor: "@op:hs", erin: "uptime", erachter: "test" };
  return { dir, audit, u, base };
}

Deno.test("each way a command can be cut off gets the answer that says what happened", async () => {
  const { dir, audit, u, base } = await setUp();
  const exec = (id: string) =>
    audit.append({ ...base, token_type: "nc.command.execute", eraan: [id] });
  const ran = await exec("$ran");
  await audit.appendResult(ran, { exit_code: 3, eraan: ["$ran"] });
  await exec("$running");
  await audit.append({
    ...base,
    token_type: "nc.airlock.deny",
    eraan: ["$denied"],
    eromheen: { rule: "deny.policy", reason: "reboot is denied" },
  });
  const path = `${dir}/audit.jsonl`;
  const ids = ["$ran", "$running", "$denied", "$claimed"];
  let byEvent = recordsByEvent(path, ids);
  const answer = (id: string) => interruptedAnswer(u(id), byEvent.get(id) ?? [], audit, "host");

  assert.match((await answer("$ran")).head!, /it ended with exit 3; its output is lost/);
  assert.match((await answer("$running")).head!, /^interrupted: the agent stopped while/);
  assert.match((await answer("$denied")).head!, /^refused \(deny\.policy\): reboot is denied/);
  const notRun = await answer("$claimed");
  assert.match(notRun.head!, /^not run: .*nothing ran, send it again/);
  assert.match(notRun.tail!, /^TIBET: .* \| #\d+$/);

  // Answered once more after another kill: the records written above close them.
  byEvent = recordsByEvent(path, ids);
  assert.match((await answer("$running")).head!, /^interrupted:/);
  assert.match((await answer("$claimed")).head!, /^not run:/);
  assert.equal(
    byEvent.get("$running")!.filter((r) => r.token.token_type === "nc.command.result").length,
    1,
    "one result record, not one per restart",
  );
  await audit.close();
  const verdict = await verifyLogFile(path);
  assert.equal(verdict.ok, true, "the chain stays whole");
});

Deno.test("recordsByEvent: a missing log has none; only the named events are returned", async () => {
  const { dir, audit, base } = await setUp();
  assert.equal(recordsByEvent(`${dir}/none.jsonl`, ["$x"]).size, 0);
  await audit.append({ ...base, token_type: "nc.command.execute", eraan: ["$a"] });
  await audit.append({ ...base, token_type: "nc.command.execute", eraan: ["$b"] });
  await audit.close();
  const got = recordsByEvent(`${dir}/audit.jsonl`, ["$b", "$c"]);
  assert.deepEqual([...got.keys()], ["$b"]);
});
