import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A TIBET endpoint that fails its first `failures` requests, then records bodies. */
function brainServer(failures: number) {
  const received: Record<string, unknown>[] = [];
  let calls = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      calls++;
      if (calls <= failures) return new Response("down", { status: 503 });
      if (new URL(req.url).pathname !== "/api/protocol/send") {
        return new Response("no", {
          status: 404,
        });
      }
      received.push(await req.json());
      return new Response("{}");
    },
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, received, close: () => ac.abort() };
}

async function auditCli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await runMain(["audit", ...args]);
  return { code: r.code, out: r.stdout + r.stderr };
}

Deno.test(
  "audit: provenance in replies, chain anchored in the room, fail closed, tokens emitted",
  opts,
  async (t) => {
    const brain = brainServer(2);
    const w = await startWorld({ BRAIN_API_BASE: brain.url });
    try {
      const marker = `${await Deno.makeTempDir()}/ran`;
      await Deno.writeTextFile(`${w.binDir}/canary`, `#!/bin/sh\n: > '${marker}'\n`, {
        mode: 0o755,
      });
      const { operator } = w;
      const room = await operator.createRoom([w.agentUser.userId]);
      await operator.waitForJoin(room, w.agentUser.userId);
      const log = `${w.stateDir}/audit.jsonl`;

      let lastHead = "", lastSeq = 0;
      await t.step(
        "each reply ends in a provenance line naming a record that verifies",
        async () => {
          for (const cmd of ["echo one", "uptime", "reboot"]) {
            const body = await operator.waitForFinal(room, await operator.send(room, `$ ${cmd}`));
            const m = body.match(/^TIBET: ([0-9a-f-]{36}) \| L4: ([0-9a-f]{16}) \| #(\d+)$/m);
            assert.ok(m, body);
            lastHead = m[2];
            lastSeq = Number(m[3]);
          }
          const chain =
            (await operator.waitForReply(room, await operator.send(room, "$ chain"))).getContent()
              .body;
          const pubkey = chain.match(/signing key: ([0-9a-f]{64})/)![1];
          const ok = await auditCli([
            "verify",
            "--log",
            log,
            "--pubkey",
            pubkey,
            "--head",
            lastHead,
          ]);
          assert.equal(ok.code, 0, ok.out);
          assert.match(ok.out, /^ok: \d+ records/m);
        },
      );

      await t.step("the room's last head exposes a log whose tail was cut", async () => {
        const lines = (await Deno.readTextFile(log)).trimEnd().split("\n");
        const cut = `${w.stateDir}/cut.jsonl`;
        const shorter = lines.slice(0, lines.findIndex((l) => l.includes(`"seq":${lastSeq},`)));
        await Deno.writeTextFile(cut, shorter.join("\n") + "\n");
        const bad = await auditCli([
          "verify",
          "--log",
          cut,
          "--head",
          lastHead,
          "--count",
          String(lastSeq),
        ]);
        assert.equal(bad.code, 1, bad.out);
        assert.match(bad.out, /FAIL/);
      });

      await t.step(
        "an audit log that cannot be written refuses the command and runs nothing",
        async () => {
          const chattr = await new Deno.Command("chattr", { args: ["+i", log] }).output().catch(
            () => null,
          );
          if (!chattr?.success) {
            console.log(
              "skipped: chattr +i is not available here (needs root and an ext-like filesystem)",
            );
            return;
          }
          try {
            const id = await operator.send(room, "$ canary");
            const reply = await operator.waitForReply(room, id);
            assert.match(
              reply.getContent().body,
              /refused \(deny\.audit\): the audit log cannot be written/,
            );
            assert.equal(
              await Deno.stat(marker).then(() => true, () => false),
              false,
              "ran unaudited",
            );
          } finally {
            await new Deno.Command("chattr", { args: ["-i", log] }).output();
          }
        },
      );

      await t.step(
        "BRAIN_API_BASE gets every token, despite failures, without delaying commands",
        async () => {
          const deadline = Date.now() + 30_000;
          const expected = (await Deno.readTextFile(log)).trimEnd().split("\n").map((l) =>
            JSON.parse(l).token.id
          );
          while (Date.now() < deadline && brain.received.length < expected.length) {
            await new Promise((r) => setTimeout(r, 250));
          }
          const ids = brain.received.map((m) => (m.token as { id: string }).id);
          for (const id of expected) assert.ok(ids.includes(id), `token ${id} not emitted`);
          const first = brain.received[0] as {
            intent: string;
            recipient_id: string;
            metadata: Record<string, unknown>;
          };
          assert.match(first.intent, /^nc\./);
          assert.equal(first.recipient_id, "tibet-nc@testhost");
          assert.equal(first.metadata.transport, "matrix-e2ee");
          assert.equal(first.metadata.service, "tibet-nc");
        },
      );
    } finally {
      await w.close();
      brain.close();
    }
  },
);
