import assert from "node:assert/strict";
import { aim, globMatch, parseTarget, splitTarget } from "../lib/matrix/target.ts";
import { classify, type MessageFacts } from "../lib/matrix/events.ts";
import { loadConfig } from "../lib/config/config.ts";
import { replyShape } from "../lib/worker/fleet_reply.ts";
import { isBuiltin, runBuiltin } from "../lib/worker/builtins.ts";
import { createJobs } from "../lib/worker/jobs.ts";

const web1 = { hostname: "web-1", tags: ["role=web", "dc=ams"] };
const db1 = { hostname: "db-1", tags: ["role=db", "dc=ams"] };
const FLEET = { fleet: true, hint: false };
const HINTER = { fleet: true, hint: true };
const SINGLE = { fleet: false, hint: false };

Deno.test("target: the syntax parses to selectors, and anything else is no target", () => {
  assert.deepEqual(splitTarget("$ uptime"), { target: null, rest: "$ uptime" });
  assert.deepEqual(splitTarget("@web-1 $ uptime"), {
    target: [{ kind: "host", glob: "web-1" }],
    rest: "$ uptime",
  });
  assert.deepEqual(splitTarget("@all hosts")?.target, [{ kind: "all" }]);
  assert.deepEqual(splitTarget("@role=db $ df")?.target, [{
    kind: "tag",
    key: "role",
    value: "db",
  }]);
  assert.deepEqual(parseTarget("web-*,role=db"), [
    { kind: "host", glob: "web-*" },
    { kind: "tag", key: "role", value: "db" },
  ]);
  for (
    const bad of [
      "@",
      "@ $ ls",
      "@bob:example.org $ ls",
      "@a=b=c $ ls",
      "@Role=x $ ls",
      "@a,,b $ ls",
      "@x/y $ ls",
    ]
  ) {
    assert.equal(splitTarget(bad), null, bad);
  }
});

Deno.test("target: globs match whole host names, case-insensitively, with no regex leaking", () => {
  assert.ok(globMatch("web-*", "web-1"));
  assert.ok(globMatch("WEB-?", "web-1"));
  assert.ok(!globMatch("web-?", "web-10"));
  assert.ok(!globMatch("web", "web-1"));
  assert.ok(!globMatch("w.b-1", "wxb-1"), ". is a dot, not any character");
  assert.ok(globMatch("*", "db-1"));
});

Deno.test("target: the decision, fleet or single agent", () => {
  const t = (s: string) => parseTarget(s);
  // Targeted: the target alone decides, fleet or not.
  for (const mode of [FLEET, HINTER, SINGLE]) {
    assert.equal(aim(t("web-1"), web1, mode), "run");
    assert.equal(aim(t("web-1"), db1, mode), "ignore");
    assert.equal(aim(t("web-*"), web1, mode), "run");
    assert.equal(aim(t("role=web"), web1, mode), "run");
    assert.equal(aim(t("role=web"), db1, mode), "ignore");
    assert.equal(aim(t("all"), db1, mode), "run");
    assert.equal(aim(t("db-1,role=web"), web1, mode), "run");
    assert.equal(aim(t("dc=ams"), db1, mode), "run");
    assert.equal(aim(t("dc=fra"), db1, mode), "ignore");
  }
  // Untargeted: a single agent runs it as always; in a fleet only the hinting agent answers.
  assert.equal(aim(null, web1, SINGLE), "run");
  assert.equal(aim(null, web1, FLEET), "ignore");
  assert.equal(aim(null, web1, HINTER), "hint");
});

function facts(content: Record<string, unknown>, sender = "@op:x"): MessageFacts {
  return { sender, encrypted: true, type: "m.room.message", content, roomId: "!r:x" };
}

Deno.test("classify: targets, the $ after them, and mentions that are no command", () => {
  const c = (body: string) => classify(facts({ msgtype: "m.text", body }), "@agent:x", null);
  assert.deepEqual(c("$ uptime"), { kind: "command", text: "uptime" });
  assert.deepEqual(c("@web-1 $ uptime"), {
    kind: "command",
    text: "uptime",
    target: [{ kind: "host", glob: "web-1" }],
  });
  assert.deepEqual(c("@all hosts"), { kind: "command", text: "hosts", target: [{ kind: "all" }] });
  assert.equal(
    c("@web-1 uptime").kind,
    "ignore",
    "after a target, only reporting built-ins go bare",
  );
  assert.equal(c("@web-1 look at this").kind, "ignore");
  assert.equal(c("@alice:example.org $ ls").kind, "ignore");
  // Unencrypted stays refused before any targeting.
  assert.equal(
    classify({ ...facts({ msgtype: "m.text", body: "@all $ ls" }), encrypted: false }, "@a:x", null)
      .kind,
    "ignore",
  );
});

Deno.test("classify: another agent's fleet reply (a threaded m.notice) is never a command", () => {
  const shape = replyShape({ fleet: true, hostname: "web-1" });
  for (const head of ["@all $ canary", "$ canary"]) {
    const reply = shape.reply("$cmd", { head, pre: "$ canary", tail: "TIBET: #1" });
    assert.equal(reply.msgtype, "m.notice");
    assert.equal(classify(facts(reply, "@web1:x"), "@db1:x", null).kind, "ignore");
    assert.equal(classify(facts(reply, "@web1:x"), "@db1:x", "!r:x").kind, "ignore");
    // Even sent as m.text, its first line (the host's name) is no `$ ` command.
    const asText = { ...reply, msgtype: "m.text" };
    assert.equal(classify(facts(asText, "@web1:x"), "@db1:x", null).kind, "ignore");
  }
});

Deno.test("fleet replies are threads on the command that name the host; edits replace them", () => {
  const fleet = replyShape({ fleet: true, hostname: "web-1" });
  const r = fleet.reply("$cmd", { head: "running #1", pre: "out" });
  assert.deepEqual(r["m.relates_to"], {
    rel_type: "m.thread",
    event_id: "$cmd",
    is_falling_back: true,
    "m.in_reply_to": { event_id: "$cmd" },
  });
  assert.match(String(r.body), /^web-1: running #1\nout$/);
  assert.equal(fleet.reply("$cmd", { pre: "x" }).body, "web-1\nx");
  const e = fleet.edit("$reply", { head: "done", pre: "out" });
  assert.deepEqual(e["m.relates_to"], { rel_type: "m.replace", event_id: "$reply" });
  assert.equal((e["m.new_content"] as Record<string, unknown>).body, "web-1: done\nout");
  const file = fleet.file("$cmd", { msgtype: "m.file", "m.relates_to": { "m.in_reply_to": {} } });
  assert.equal((file["m.relates_to"] as Record<string, unknown>).rel_type, "m.thread");
  // Outside a fleet: the plain reply of before.
  const single = replyShape({ fleet: false, hostname: "web-1" });
  const p = single.reply("$cmd", { head: "done" });
  assert.deepEqual(p["m.relates_to"], { "m.in_reply_to": { event_id: "$cmd" } });
  assert.equal(p.body, "done");
});

const BASE = {
  MATRIX_HOMESERVER: "https://m.example.org",
  TIBET_NC_USER_ID: "@bot:example.org",
  TIBET_NC_ACCESS_TOKEN: "t",
  TIBET_NC_ALLOWED_USERS: "@op:example.org",
  TIBET_NC_HOSTNAME: "web-1",
};

Deno.test("config: fleet settings are checked strictly, naming the variable", () => {
  const c = loadConfig({ ...BASE, TIBET_NC_FLEET: "yes", TIBET_NC_TAGS: "role=web, dc=ams" });
  assert.deepEqual([c.fleet, c.fleetHint, c.tags], [true, false, ["role=web", "dc=ams"]]);
  assert.deepEqual(loadConfig(BASE).tags, []);
  assert.equal(loadConfig(BASE).fleet, false);
  const fails = (env: Record<string, string>, variable: string, re: RegExp) =>
    assert.throws(() => loadConfig({ ...BASE, ...env }), (e: Error & { variable?: string }) => {
      assert.equal(e.variable, variable);
      assert.match(e.message, re);
      return true;
    });
  fails({ TIBET_NC_TAGS: "role" }, "TIBET_NC_TAGS", /"role" is not a tag/);
  fails({ TIBET_NC_TAGS: "role=web,,dc=x" }, "TIBET_NC_TAGS", /"" is not a tag/);
  fails({ TIBET_NC_TAGS: "Role=web" }, "TIBET_NC_TAGS", /not a tag/);
  fails({ TIBET_NC_TAGS: "role=a=b" }, "TIBET_NC_TAGS", /not a tag/);
  fails({ TIBET_NC_TAGS: "role=w b" }, "TIBET_NC_TAGS", /not a tag/);
  fails({ TIBET_NC_TAGS: "role=web,role=web" }, "TIBET_NC_TAGS", /twice/);
  fails({ TIBET_NC_FLEET: "maybe" }, "TIBET_NC_FLEET", /yes or no/);
  fails({ TIBET_NC_FLEET_HINT: "yes" }, "TIBET_NC_FLEET_HINT", /TIBET_NC_FLEET is not/);
  fails(
    { TIBET_NC_FLEET: "yes", TIBET_NC_HOSTNAME: "all" },
    "TIBET_NC_HOSTNAME",
    /cannot be targeted/,
  );
  fails({ TIBET_NC_FLEET: "yes", TIBET_NC_HOSTNAME: "web 1" }, "TIBET_NC_HOSTNAME", /cannot be/);
  // Outside a fleet any host name stays as it was.
  assert.equal(loadConfig({ ...BASE, TIBET_NC_HOSTNAME: "my host" }).hostname, "my host");
});

Deno.test("hosts: the built-in names the host, its tags, version, uptime and chain head", () => {
  assert.ok(isBuiltin(["hosts"]));
  assert.ok(!isBuiltin(["hosts", "x"]));
  const config = loadConfig({ ...BASE, TIBET_NC_FLEET: "yes", TIBET_NC_TAGS: "role=web" });
  const head = { seq: 7, l4: "ab".repeat(32), chainId: "c", tokenId: null };
  const parts = runBuiltin(["hosts"], {
    config,
    chain: () =>
      ({ head, pubkeyHex: "00" }) as unknown as ReturnType<
        Parameters<typeof runBuiltin>[1]["chain"]
      >,
    jobs: createJobs(),
    startedAt: Date.now() - 65_000,
    counters: { commands: 0, refused: 0 },
    execAs: "x",
  }, "@op:x");
  assert.match(
    parts.pre!,
    /^web-1 {2}tags role=web {2}tibet-nc \d+\.\d+\.\d+ {2}up 1m 5s {2}chain #7 L4 (ab){8}$/,
  );
});
