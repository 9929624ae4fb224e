/**
 * The handler's fleet order with a stand-in monitor and replay store: a command
 * for other agents leaves no trace (no claim, no record, no answer); the hint
 * comes only after the airlock; a targeted one runs.
 * @module
 */

import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/config.ts";
import { createHandler } from "../lib/worker/handler.ts";
import type { Monitor } from "../lib/worker/monitor_client.ts";
import type { SeenEvents } from "../lib/airlock/replay.ts";
import type { IncomingCommand, ReplyParts } from "../lib/worker/reply_parts.ts";
import { FLEET_HINT, parseTarget } from "../lib/matrix/target.ts";

const OP = "@op:example.org";

function setup(env: Record<string, string>) {
  const config = loadConfig({
    MATRIX_HOMESERVER: "https://m.example.org",
    TIBET_NC_USER_ID: "@web1:example.org",
    TIBET_NC_ACCESS_TOKEN: "t",
    TIBET_NC_ALLOWED_USERS: OP,
    TIBET_NC_HOSTNAME: "web-1",
    TIBET_NC_TAGS: "role=web",
    ...env,
  });
  const trace: string[] = [];
  const claimed = new Set<string>();
  const seen: SeenEvents = {
    has: (id) => claimed.has(id),
    claim: (id) => {
      trace.push(`claim ${id}`);
      if (claimed.has(id)) return false;
      claimed.add(id);
      return true;
    },
    done: () => {},
    takeUnfinished: () => [],
    close: () => {},
  };
  const head = { seq: 1, l4: "00".repeat(32), chainId: "c", tokenId: null };
  const monitor = {
    record: (o: { eventId: string }, e: { kind: string; rule?: string }) => {
      trace.push(`record ${o.eventId} ${e.rule ?? e.kind}`);
      return Promise.resolve("TIBET: #2");
    },
    run: (o: { eventId: string; text: string }) => {
      trace.push(`run ${o.eventId} ${o.text}`);
      return { cancel() {}, done: Promise.resolve({ ran: true, parts: { head: "ok" } }) };
    },
    interrupted: () => Promise.resolve([]),
    chain: () => ({ head, pubkeyHex: "00" }),
  } as unknown as Monitor;
  const handler = createHandler({ config, seen, monitor, execAs: "x", log: () => {} });
  const send = async (id: string, text: string, target: string | null, sender = OP) => {
    const cmd: IncomingCommand = {
      text,
      sender,
      roomId: "!r:x",
      eventId: id,
      originTs: Date.now(),
      judge: () => Promise.resolve(undefined),
      ...(target ? { target: parseTarget(target)! } : {}),
    };
    await handler(cmd, {
      send: (p: ReplyParts) => {
        trace.push(`reply ${id} ${p.head ?? p.pre ?? ""}`);
        return Promise.resolve("$r");
      },
      edit: () => Promise.resolve(),
      sendFile: () => Promise.resolve("$f"),
    });
  };
  return { trace, send };
}

Deno.test("fleet: a command for other agents leaves no trace, strangers' included", async () => {
  const { trace, send } = setup({ TIBET_NC_FLEET: "yes" });
  await send("$a", "canary", "db-1");
  await send("$b", "canary", "role=db");
  await send("$c", "canary", "db-1", "@stranger:example.org");
  await send("$d", "canary", null); // untargeted, and this agent does not hint
  assert.deepEqual(trace, []);
});

Deno.test("fleet: targeted commands go through the airlock and run", async () => {
  const { trace, send } = setup({ TIBET_NC_FLEET: "yes" });
  await send("$a", "canary", "role=web");
  await send("$b", "canary", "all");
  await send("$c", "canary", "web-*", "@stranger:example.org");
  assert.deepEqual(trace, [
    "claim $a",
    "run $a canary",
    "reply $a ok",
    "claim $b",
    "run $b canary",
    "reply $b ok",
    "claim $c",
    "record $c deny.sender",
  ]);
});

Deno.test("fleet: the hinting agent answers an untargeted command once, after the airlock", async () => {
  const { trace, send } = setup({ TIBET_NC_FLEET: "yes", TIBET_NC_FLEET_HINT: "yes" });
  await send("$a", "canary", null);
  await send("$a", "canary", null); // a replay: claimed already, nothing
  await send("$s", "canary", null, "@stranger:example.org");
  assert.deepEqual(trace, [
    "claim $a",
    `reply $a ${FLEET_HINT}`,
    "claim $s",
    "record $s deny.sender",
  ]);
});

Deno.test("single agent: untargeted runs as before; targeted elsewhere is ignored", async () => {
  const { trace, send } = setup({});
  await send("$a", "canary", null);
  await send("$b", "canary", "db-1");
  await send("$c", "canary", "web-1");
  assert.deepEqual(trace, [
    "claim $a",
    "run $a canary",
    "reply $a ok",
    "claim $c",
    "run $c canary",
    "reply $c ok",
  ]);
});
