import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { processesWith, vm } from "./support/processes.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "commands run in a pty, stream, cancel cleanly, stay bounded and leak no secret",
  opts,
  async (t) => {
    const passphrase = `passphrase-canary-${crypto.randomUUID()}`;
    const w = await startWorld({ TIBET_NC_STORE_PASSPHRASE: passphrase });
    try {
      // A test-only program that prints one line a second for 10 s.
      await Deno.writeTextFile(
        `${w.binDir}/ticker`,
        "#!/bin/sh\ni=0\nwhile [ $i -lt 10 ]; do i=$((i+1)); echo tick $i; sleep 1; done\n",
        { mode: 0o755 },
      );
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);
      const run = async (text: string, timeoutMs = 60_000) => {
        const id = await operator.send(room, `$ ${text}`);
        return await operator.waitForFinal(room, id, timeoutMs);
      };

      await t.step("`tty` reports a pseudo-terminal", async () => {
        const body = await run("tty");
        assert.match(body, /\/dev\/pts\/\d+/);
        assert.match(body, /^exit 0/m);
        assert.match(body, /^TIBET: [0-9a-f-]{36} \| L4: [0-9a-f]{16} \| #\d+$/m);
      });

      await t.step("without TIBET_NC_FILE_DIRS, get and put say how to turn files on", async () => {
        for (const text of ["get /etc/hostname", "put /tmp"]) {
          const body = await run(text);
          assert.match(body, /^refused \((deny\.file\.off|deny\.file\.attachment)\)/, body);
        }
        assert.match(await run("get /etc/hostname"), /set TIBET_NC_FILE_DIRS/);
      });

      await t.step("`printf` proves execution: the output is not the command's text", async () => {
        const body = await run("printf %s-%s left right");
        assert.match(body, /left-right/);
      });

      await t.step("`env` shows no access token, passphrase or TIBET_NC_ variable", async () => {
        const body = await run("env");
        assert.match(body, /PATH=/, "env ran");
        assert.ok(!body.includes(w.agentUser.accessToken), "access token leaked");
        assert.ok(!body.includes(passphrase), "store passphrase leaked");
        assert.doesNotMatch(body, /TIBET_NC_|MATRIX_HOMESERVER/);
      });

      await t.step("a 10 s command streams at least two edits before its final reply", async () => {
        const id = await operator.send(room, "$ ticker");
        const reply = await operator.waitForReply(room, id, 10_000);
        assert.match(reply.getContent().body, /^running #\d+/);
        const final = await operator.waitForFinal(room, id, 30_000);
        assert.match(final, /tick 10/);
        const edits = operator.edits(room, reply.getId()!);
        const progress = edits.filter((b) => /^running #/.test(b));
        assert.ok(
          progress.length >= 2,
          `expected >= 2 progress edits, got ${progress.length}: ${JSON.stringify(edits)}`,
        );
        // A client that does not apply edits shows the last edit's own body: the whole result.
        const shown = operator.editFallbacks(room, reply.getId()!).at(-1) ?? "";
        assert.match(shown, /^\* /);
        assert.match(shown, /tick 10/);
        assert.match(shown, /^TIBET: /m);
      });

      await t.step("`cancel` stops `sleep 100` and leaves no process", async () => {
        const marker = `100.${Math.floor(Math.random() * 1e6)}`;
        const id = await operator.send(room, `$ sleep ${marker}`);
        await operator.waitForReply(room, id, 10_000);
        assert.equal((await processesWith(marker)).length > 0, true, "sleep is running");
        const jobs = await operator.waitForReply(room, await operator.send(room, "$ jobs"));
        assert.match(jobs.getContent().body, new RegExp(`sleep ${marker.replace(".", "\\.")}`));
        await operator.waitForReply(room, await operator.send(room, "$ cancel"));
        const final = await operator.waitForFinal(room, id, 20_000);
        assert.match(final, /cancelled by @operator/);
        assert.deepEqual(await processesWith(marker), []);
      });

      await t.step("1 GB of output grows the agent by a few MB at most", async () => {
        // A first 300 MB run (long enough to be edited as it runs) settles the heap and
        // buffers; then 3x the output must not raise the peak: memory does not grow
        // with output size.
        // Timeouts far above the need: on a loaded machine 1 GB may take minutes.
        await run("timeout=300 head -c 300000000 /dev/urandom", 320_000);
        const before = vm(w.agent.pid, "VmHWM");
        const body = await run("timeout=600 head -c 1000000000 /dev/urandom", 620_000);
        const after = vm(w.agent.pid, "VmHWM");
        assert.match(body, /output cut: 1\.0 GB total/);
        const growth = after - before;
        console.log(
          `agent peak RSS ${(before / 1048576).toFixed(0)} MiB before, +${
            (growth / 1048576).toFixed(1)
          } MiB after 1 GB`,
        );
        assert.ok(
          growth < 16 * 1024 * 1024,
          `peak RSS grew by ${(growth / 1048576).toFixed(1)} MiB`,
        );
      });
    } finally {
      await w.close();
    }
  },
);
