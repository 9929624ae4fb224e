/**
 * Pipelines through the real agent, from an operator's encrypted message: the
 * output a shell would give, nothing started when one stage is refused, every
 * stage stopped by cancel, and an audit record naming each stage.
 */
import assert from "node:assert/strict";
import { startWorld, TEST_PROGRAMS } from "./support/fixture.ts";
import { processesWith } from "./support/processes.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const isRoot = Deno.uid() === 0;

/** The output block of a final reply: between the summary line and the provenance line. */
function output(body: string): string {
  const lines = body.split("\n");
  return lines.slice(1, lines.findLastIndex((l) => l.startsWith("TIBET: "))).join("\n");
}

async function shell(line: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", line], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).replace(/\n$/, "");
}

Deno.test("pipelines run stage by stage through the agent, without a shell", opts, async (t) => {
  const canary = await Deno.makeTempDir({ prefix: "tibet-nc-pipe-canary-" });
  await Deno.chmod(canary, 0o777); // the exec user may create its marker, if anything runs
  const w = await startWorld(
    isRoot ? { TIBET_NC_EXEC_AS_SELF: "no", TIBET_NC_EXEC_USER: "nobody" } : {},
    [...TEST_PROGRAMS, "ps", "grep", "tail", "wc", "sort", "tr", "touch", "sh", "xargs", "od"],
    (binDir) => Deno.chmod(binDir, 0o755),
  );
  try {
    const { operator } = w;
    const room = await operator.createRoom([w.agentUser.userId]);
    await operator.waitForJoin(room, w.agentUser.userId);
    const run = async (text: string) =>
      await operator.waitForFinal(room, await operator.send(room, `$ ${text}`));

    await t.step("two and three stages give what a shell gives", async () => {
      for (
        const line of [
          "printf 'b\\na\\nc\\n' | sort",
          "seq 1 3000 | grep 7 | tail -5",
          "seq 100000 | tr -d '\\n' | wc -c",
        ]
      ) {
        const body = await run(line);
        assert.match(body, /^exit 0 /, `${line}: ${body}`);
        assert.equal(output(body).trimEnd(), await shell(line), line);
      }
      const ps = await run("ps aux | grep -c .");
      assert.match(output(ps).trim(), /^\d+$/);
    });

    await t.step("a refused stage refuses the line: no stage starts", async () => {
      const cases: [string, RegExp][] = [
        ["touch @C@/before-shell | sh", /deny\.shell.*stage 2 of 2 \(sh\)/],
        ["touch @C@/before-xargs | grep x | xargs touch @C@/xargs", /deny\.wrapper.*stage 3 of 3/],
        ["touch @C@/before-missing | nosuch", /deny\.resolve/],
        ["touch @C@/before-empty | | cat", /deny\.parse.*needs a command on each side/],
      ];
      for (const [text, want] of cases) {
        const body = await run(text.replaceAll("@C@", canary));
        assert.match(body, /^refused /, body);
        assert.match(body, want);
      }
      const created: string[] = [];
      for await (const e of Deno.readDir(canary)) created.push(e.name);
      assert.deepEqual(created, [], "a stage of a refused pipeline ran");
    });

    await t.step("cancel stops every stage", async () => {
      const mark = `${Math.floor(Math.random() * 1e6)}`;
      const id = await operator.send(room, `$ sleep 100.${mark} | sleep 101.${mark} | cat`);
      await operator.waitForReply(room, id, 10_000);
      for (const n of [100, 101]) {
        assert.ok((await processesWith(`${n}.${mark}`)).length > 0, `stage sleep ${n} runs`);
      }
      await operator.waitForReply(room, await operator.send(room, "$ cancel"));
      assert.match(await operator.waitForFinal(room, id, 20_000), /cancelled by @operator/);
      assert.deepEqual(await processesWith(`.${mark}`), []);
    });

    await t.step("the audit records name each stage and keep each stage's status", async () => {
      const body = await run("yes | head -2");
      assert.match(body, /^exit 0 /);
      const seq = Number(body.match(/#(\d+)$/m)![1]);
      const records = (await Deno.readTextFile(`${w.stateDir}/audit.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l));
      const result = records.find((r) => r.seq === seq);
      const execute = records.find((r) => r.seq === result.parent_seq);
      assert.equal(execute.token.token_type, "nc.command.execute");
      const stages = JSON.parse(execute.token.eromheen).stages;
      assert.deepEqual(stages.map((s: { program: string }) => s.program), [
        `${w.binDir}/yes`,
        `${w.binDir}/head`,
      ]);
      assert.deepEqual(JSON.parse(result.token.eromheen).stage_exit_codes, [141, 0]);
    });
  } finally {
    await w.close();
    await Deno.remove(canary, { recursive: true });
  }
});
