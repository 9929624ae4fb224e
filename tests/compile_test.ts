import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");
const why = denort
  ? ""
  : " (skipped: DENORT_BIN is not set, and deno compile cannot download denort on this machine; every behaviour is tested through `deno run` with the same flags)";

Deno.test({
  name: `deno task compile builds one binary whose subcommands are main.ts's${why}`,
  ignore: !denort,
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    const bin = `${ROOT}dist/tibet-nc`;
    const help = await new Deno.Command(bin, { args: ["--help"], stdout: "piped" }).output();
    const text = new TextDecoder().decode(help.stdout);
    for (const sub of ["run", "login", "doctor", "policy check", "audit verify", "trust"]) {
      assert.match(text, new RegExp(`^  ${sub}`, "m"));
    }
    const deny = await new Deno.Command(bin, {
      args: ["policy", "check", "--bin-dir", "/usr/bin", "reboot"],
      stdout: "piped",
    }).output();
    assert.equal(deny.code, 1);
  },
});
