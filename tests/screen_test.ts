import assert from "node:assert/strict";
import { createScreen } from "../lib/screen/emulator.ts";
import { isScreenCommand } from "../lib/screen/programs.ts";
import { parsePrefixes } from "../lib/monitor/prefixes.ts";
import { loadConfig } from "../lib/config/config.ts";
import { childEnv } from "../lib/exec/child_env.ts";

const enc = new TextEncoder();

async function render(bytes: Uint8Array, opts = {}): Promise<string> {
  const s = createScreen(opts);
  try {
    s.push(bytes);
    await s.settled();
    return s.render();
  } finally {
    s.dispose();
  }
}

Deno.test("recorded top output renders as a readable screen, header first, exit newline absorbed", async () => {
  const pty = await Deno.readFile(new URL("./fixtures/top.pty", import.meta.url));
  const screen = await render(pty);
  const lines = screen.split("\n");
  assert.match(lines[0], /^top - \d\d:\d\d:\d\d up /, screen);
  assert.match(lines[1], /^Tasks: +\d+ total/);
  assert.match(screen, /^ +PID USER +PR +NI/m);
  assert.ok(lines.length <= 40, `${lines.length} lines`);
  assert.ok(lines.every((l) => l.length <= 120));
  assert.ok(!screen.includes("\x1b"), "no escape character left");
  assert.doesNotMatch(screen, /\[\d+;\d+H|\(B/, "no escape sequence left");
});

Deno.test("wide characters keep the layout: a CJK cell pair counts as one character", async () => {
  const screen = await render(enc.encode("\x1b[2J\x1b[H\x1b[31m漢字\x1b[0m|\x1b[2;1Hab|"));
  assert.deepEqual(screen.split("\n"), ["漢字|", "ab|"]);
});

Deno.test("a program's request for a 10000-column terminal is ignored", async () => {
  const screen = await render(enc.encode(`\x1b[8;40;10000t${"x".repeat(130)}`));
  const [first, second] = screen.split("\n");
  assert.equal(first.length, 120);
  assert.equal(second, "x".repeat(10));
});

Deno.test("a flood of escape sequences is skipped past the lag cap, not queued", async () => {
  const s = createScreen({ lagBytes: 1 << 20 });
  const frame = enc.encode("\x1b[H\x1b[2J\x1b[1;31mframe\x1b[K\x1b[0m\r\n".repeat(4096));
  for (let i = 0; i < 200; i++) s.push(frame); // 200 x ~120 KB pushed in one go
  assert.ok(s.skippedBytes > 20_000_000, `skipped ${s.skippedBytes}`);
  await s.settled();
  assert.match(s.render(), /frame/);
  s.dispose();
});

Deno.test("screen programs: the list by bin-dir or real name, batch options plain, screen=yes forces", () => {
  const one = (argv: string[], realName = argv[0]) => [{ argv, name: argv[0], realName }];
  assert.equal(isScreenCommand(one(["top"]), false), true);
  assert.equal(isScreenCommand(one(["top", "-d", "1"]), false), true);
  assert.equal(isScreenCommand(one(["top", "-b", "-n", "1"]), false), false);
  assert.equal(isScreenCommand(one(["top", "-bn1"]), false), false);
  assert.equal(isScreenCommand(one(["top", "--batch"]), false), false);
  assert.equal(isScreenCommand(one(["mytop"], "htop"), false), true, "real name counts");
  assert.equal(isScreenCommand(one(["ls"]), false), false);
  assert.equal(isScreenCommand(one(["ls"]), true), true);
  assert.equal(isScreenCommand([...one(["top"]), ...one(["head"])], true), false, "pipeline");
});

Deno.test("prefixes: duration and watch out of range are refused with the limit", () => {
  const config = loadConfig({
    MATRIX_HOMESERVER: "https://hs.example",
    TIBET_NC_USER_ID: "@a:hs.example",
    TIBET_NC_ACCESS_TOKEN: "t",
    TIBET_NC_ALLOWED_USERS: "@o:hs.example",
  });
  const rule = (t: string) => {
    const p = parsePrefixes(t, config);
    return "rule" in p ? p.rule : "ok";
  };
  assert.equal(rule("duration=0 top"), "deny.duration");
  assert.equal(rule("duration=99999 top"), "deny.duration");
  assert.equal(rule("timeout=120 duration=90 top"), "ok");
  assert.equal(rule("duration=90 timeout=120 top"), "ok");
  assert.equal(rule("watch=0 date"), "deny.watch");
  assert.equal(rule("watch=1 date"), "deny.watch");
  assert.equal(rule("watch=2 date"), "ok");
  assert.equal(rule("watch=2 duration=3 date"), "deny.watch");
  assert.equal(rule("screen=maybe ls"), "deny.screen");
  assert.equal(rule("timeout=5 timeout=6 ls"), "deny.timeout");
  const p = parsePrefixes("screen=yes timeout=30 ls -l", config);
  assert.deepEqual(p, { text: "ls -l", timeoutS: 30, screen: true });
  const d = parsePrefixes("duration=0 top", config);
  assert.ok("reason" in d && /1\.\.60 s/.test(d.reason), JSON.stringify(d));
});

Deno.test("only a screen program gets a real terminal type", () => {
  assert.equal(childEnv({ binDir: "/b", home: "/h" }).TERM, "dumb");
  assert.equal(childEnv({ binDir: "/b", home: "/h", screen: true }).TERM, "xterm-256color");
});
