import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("a run prints nothing about the npm registry, even with an empty Deno cache", async () => {
  // An empty DENO_DIR is the worst case: with "nodeModulesDir": "auto" Deno asks
  // the registry about every package on every run, and says so on stderr.
  const denoDir = await Deno.makeTempDir({ prefix: "tibet-nc-deno-dir-" });
  try {
    for (let i = 0; i < 2; i++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}main.ts`, "doctor", "--help"],
        cwd: ROOT,
        env: { DENO_DIR: denoDir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.match(new TextDecoder().decode(out.stdout), /^usage: tibet-nc doctor/);
      assert.doesNotMatch(stderr, /Download|registry\.npmjs\.org/, `run ${i + 1}`);
    }
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
