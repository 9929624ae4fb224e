import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("deno task demo answers piped commands with decrypted final results", async () => {
  const token = `demo-${crypto.randomUUID()}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "demo/demo.ts"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(`echo ${token}\nsleep 3\n`));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  assert.match(text, new RegExp(`^${token}$`, "m"), text);
  assert.match(text, /^exit 0 · 3\.\d\d s$/m, "the final result of a command that streams");
  assert.equal(text.match(/\(decrypted reply from @agent:localhost\)/g)?.length, 2, text);
  assert.doesNotMatch(text, /PLAINTEXT|no reply/);
  assert.match(text, /stopping the agent and Synapse/);
});
