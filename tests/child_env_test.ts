import assert from "node:assert/strict";
import { childEnv } from "../lib/exec/child_env.ts";

// Written out here, not imported: adding a variable to children must be a
// deliberate change that also touches this test.
const ALLOWED = new Set([
  "PATH",
  "HOME",
  "TERM",
  "LANG",
  "PAGER",
  "SYSTEMD_PAGER",
  "GIT_PAGER",
  "MANPAGER",
  "LESSSECURE",
  "SYSTEMD_COLORS",
  "NO_COLOR",
  "COLUMNS",
  "LINES",
]);

Deno.test("childEnv holds only allowlisted keys and nothing from the agent's environment", async () => {
  const canary = `canary-${crypto.randomUUID()}`;
  const planted = ["TIBET_NC_ACCESS_TOKEN", "TIBET_NC_STORE_PASSPHRASE", "EDITOR", "VISUAL"];
  // The secrets are planted in a process of its own: the environment is shared by
  // test files running in parallel.
  const module = new URL("../lib/exec/child_env.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { childEnv } from ${JSON.stringify(module)};
       console.log(JSON.stringify(childEnv({ binDir: "/usr/local/tibet-nc-bin", home: "/var/empty" })));`,
    ],
    env: Object.fromEntries(planted.map((k) => [k, canary])),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const env = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, string>;
  for (const key of Object.keys(env)) assert.ok(ALLOWED.has(key), `unexpected key ${key}`);
  for (const [key, value] of Object.entries(env)) {
    assert.ok(!value.includes(canary), `${key} carries a planted secret`);
  }
  assert.ok(!("EDITOR" in env) && !("VISUAL" in env));
  assert.equal(env.PATH, "/usr/local/tibet-nc-bin");
});

Deno.test("childEnv sets PATH to the bin dir alone and closes pagers", () => {
  const env = childEnv({ binDir: "/opt/bin", home: "/home/x" });
  assert.equal(env.PATH, "/opt/bin");
  assert.equal(env.HOME, "/home/x");
  assert.equal(env.TERM, "dumb");
  assert.equal(env.LANG, "C.UTF-8");
  for (const k of ["PAGER", "SYSTEMD_PAGER", "GIT_PAGER", "MANPAGER"]) assert.equal(env[k], "cat");
  assert.equal(env.LESSSECURE, "1");
  assert.equal(env.NO_COLOR, "1");
  assert.equal(env.SYSTEMD_COLORS, "0");
  assert.equal(env.COLUMNS, "120");
  assert.equal(env.LINES, "40");
  assert.equal(
    childEnv({ binDir: "/opt/bin", home: "/h", lang: "de_DE.UTF-8" }).LANG,
    "de_DE.UTF-8",
  );
});

Deno.test("childEnv refuses a relative or multi-entry bin dir and a relative home", () => {
  assert.throws(() => childEnv({ binDir: "bin", home: "/h" }), /absolute/);
  assert.throws(() => childEnv({ binDir: "/a:/b", home: "/h" }), /without ":"/);
  assert.throws(() => childEnv({ binDir: "/a", home: "h" }), /absolute/);
});
