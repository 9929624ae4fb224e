/**
 * `tibet-nc connect` against a real Synapse and agent: a new operator device
 * logs in and is cross-signed with the recovery key, pins the agent, runs
 * commands in one-shot mode with the remote exit codes, and refuses what it
 * must (a changed agent identity, an uncross-signed device, bad input).
 * @module
 */

import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { runMain } from "./support/cli.ts";
import { startPty } from "./support/pty.ts";
import { firstConnectArgs } from "./support/connect.ts";
import { startOperator } from "./support/operator.ts";
import { type MatrixClient, type MatrixEvent, MatrixEventEvent, MsgType } from "matrix-js-sdk";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("connect: recovery key, pinning, one-shot exit codes, refusals", async (t) => {
  const fileDir = await Deno.makeTempDir({ prefix: "tibet-nc-connect-files-" });
  const w = await startWorld({ TIBET_NC_FILE_DIRS: fileDir });
  const dirs: string[] = [fileDir];
  const tmp = async (prefix: string) => {
    const d = await Deno.makeTempDir({ prefix });
    dirs.push(d);
    return d;
  };
  try {
    const recoveryKey = await w.operator.setUpRecovery();
    const room = await w.operator.createRoom([w.agentUser.userId]);
    await w.operator.waitForJoin(room, w.agentUser.userId);
    const state = await tmp("tibet-nc-connect-");
    const base = firstConnectArgs(w, room, state);
    /** The interactive mode as a person starts it. */
    const shell = [
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-worker-options",
      MAIN,
      "connect",
      "--state-dir",
      state,
      "testhost",
    ];
    const connect = (args: string[], stdin = "") =>
      runMain(["connect", ...args], { stdin, env: { NO_COLOR: "1" } });

    await t.step("a new device is cross-signed with the recovery key and runs uptime", async () => {
      const r = await connect(
        [...base, "--password-stdin", "--recovery-key-stdin", "testhost", "--", "uptime"],
        `${w.operatorUser.password}\n${recoveryKey}\n`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /load average/);
      assert.match(r.stderr, /now cross-signed/);
      assert.match(r.stderr, /first connect to testhost/);
      assert.match(r.stderr, /master key: /);
      const mode = Deno.statSync(state).mode! & 0o777;
      assert.equal(mode, 0o700);
      assert.equal(Deno.statSync(`${state}/session.json`).mode! & 0o777, 0o600);
    });

    await t.step("the secret storage passphrase cross-signs a device too", async () => {
      // Another account whose recovery was made from a passphrase; the agent does not
      // know it, so nothing answers it: the step is the cross-signing.
      const user = await w.synapse.register("passphrase-op", crypto.randomUUID());
      const first = await startOperator(w.synapse.url, user);
      try {
        await first.setUpRecovery("correct horse battery staple");
        const dir = await tmp("tibet-nc-connect-pass-");
        const args = [
          "--homeserver",
          w.synapse.url,
          "--user",
          user.userId,
          "--state-dir",
          dir,
          "--password-stdin",
          "--recovery-key-stdin",
          "--timeout",
          "2",
          "testhost",
          "--",
          "id",
        ];
        const wrong = await connect(args, `${user.password}\nnot the passphrase\n`);
        assert.equal(wrong.code, 254, wrong.stderr);
        assert.match(wrong.stderr, /not the recovery key or passphrase/);
        const r = await connect(args, `correct horse battery staple\n`);
        assert.match(r.stderr, /now cross-signed/, r.stderr);
        assert.match(r.stderr, /in no encrypted room/, r.stderr);
      } finally {
        first.stop();
      }
    });

    await t.step("one-shot gives the remote exit code", async () => {
      const f = await connect(["--state-dir", state, "testhost", "--", "false"]);
      assert.equal(f.code, 1, f.stderr);
      const ok = await connect(["--state-dir", state, "testhost", "--", "true"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, "");
      const echo = await connect(["--state-dir", state, "testhost", "--", "echo", "a", "b"]);
      assert.equal(echo.stdout, "a b\n");
    });

    await t.step("one-shot put and get move a file byte for byte", async () => {
      const local = await tmp("tibet-nc-connect-local-");
      const oneShot = (...words: string[]) =>
        connect(["--state-dir", state, "testhost", "--", ...words]);
      const bytes = new Uint8Array(200_000).map((_, i) => (i * 7919) % 251);
      await Deno.writeFile(`${local}/blob.bin`, bytes);
      const put = await oneShot("put", `${local}/blob.bin`, fileDir);
      assert.equal(put.code, 0, put.stderr);
      assert.match(put.stdout, /^wrote \S+\/blob\.bin · /m);
      assert.deepEqual(await Deno.readFile(`${fileDir}/blob.bin`), bytes);
      const get = await oneShot("get", `${fileDir}/blob.bin`, `${local}/back.bin`);
      assert.equal(get.code, 0, get.stderr);
      assert.deepEqual(await Deno.readFile(`${local}/back.bin`), bytes);
      const again = await oneShot("get", `${fileDir}/blob.bin`, `${local}/back.bin`);
      assert.equal(again.code, 2, "a download never replaces a local file");
      const missing = await oneShot("get", `${fileDir}/nope`);
      assert.equal(missing.code, 252, missing.stderr); // judged, recorded as run, failed there
      assert.equal(missing.stdout, "");
    });

    await t.step("a refused command exits 250 and runs nothing", async () => {
      const canary = `${await tmp("tibet-nc-canary-")}/made`;
      const r = await connect(["--state-dir", state, "testhost", "--", "touch", canary]);
      assert.equal(r.code, 250, r.stderr);
      assert.match(r.stderr, /refused \(/);
      assert.equal(r.stdout, "");
      let made = true;
      try {
        Deno.statSync(canary);
      } catch {
        made = false;
      }
      assert(!made, "the refused command ran");
    });

    await t.step("--json prints the final answer's fields", async () => {
      const r = await connect(["--state-dir", state, "--json", "testhost", "--", "echo", "x"]);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.status, "exited");
      assert.equal(j.exit_code, 0);
      assert(typeof j.duration_ms === "number");
      assert.match(j.tibet_id, /\S+/);
      assert.match(j.l4, /^[0-9a-f]{16}$/);
      assert.equal(j.host, "testhost");
    });

    await t.step("interactive: type a command, Ctrl-C a sleep 30, history, Ctrl-D", async () => {
      const p = startPty(shell);
      try {
        await p.waitFor(/^testhost\$\s*$/m);
        await p.type("echo hello-pty\r");
        await p.waitFor(/^hello-pty\s*$/m);
        await p.waitFor(/^TIBET: /m);
        await p.waitFor(/^testhost\$\s*$/m);
        await p.type("sleep 30\r");
        await p.waitFor(/running #\d+/);
        const sent = Date.now();
        await p.type("\x03");
        await p.waitFor(/cancelled by @operator/);
        assert(Date.now() - sent < 20_000, "Ctrl-C did not stop the sleep");
        // History: the up arrow brings the last command back.
        await p.type("\x1b[A");
        await p.waitFor(/^testhost\$ sleep 30\s*$/m);
        await p.type("\x15\x04");
        assert.equal((await p.status).code, 0);
      } finally {
        p.kill();
      }
      assert.match(Deno.readTextFileSync(`${state}/history`), /^echo hello-pty\nsleep 30\n$/);
    });

    await t.step("a terminal too narrow, and stdin that is not a terminal", async () => {
      const p = startPty(shell, { columns: 15 });
      try {
        await p.waitFor(/terminal is 15 columns wide/, 60_000, true);
        await p.type("echo narrow\r");
        await p.waitFor(/^narrow\s*$/m);
        await p.type("\x04");
        assert.equal((await p.status).code, 0);
      } finally {
        p.kill();
      }
      const piped = await connect(["--state-dir", state, "testhost"], "echo piped\n");
      assert.equal(piped.code, 0, piped.stderr);
      assert.match(piped.stdout, /^piped$/m);
      const closed = await connect(["--state-dir", state, "testhost"]);
      assert.equal(closed.code, 0, closed.stderr);
    });

    await t.step(
      "commands reach only cross-signed devices; a false answer is ignored",
      async () => {
        // A second device of the operator, never cross-signed, in the same room.
        const unsigned = await startOperator(
          w.synapse.url,
          await w.synapse.login(w.operatorUser.userId, w.operatorUser.password),
          false,
        );
        // The operator's first device (not the agent) answers every command at once, falsely.
        const fake = async (ev: MatrixEvent) => {
          if (ev.getRoomId() !== room || ev.getSender() !== w.operatorUser.userId) return;
          if (!String(ev.getContent().body ?? "").startsWith("@testhost $ sleep 2")) return;
          await w.operator.client.sendMessage(room, {
            msgtype: MsgType.Notice,
            body: "exit 0 · 0.01 s\nFAKE-OUTPUT\nTIBET: x | L4: 0000000000000000 | #1",
            "org.tibet-nc.answer": { status: "exited", exit_code: 0 },
            "m.relates_to": { "m.in_reply_to": { event_id: ev.getId()! } },
          } as never);
        };
        const onDecrypted = (ev: MatrixEvent) => void fake(ev);
        w.operator.client.on(MatrixEventEvent.Decrypted, onDecrypted);
        try {
          const r = await connect(["--state-dir", state, "--json", "testhost", "--", "sleep", "2"]);
          assert.equal(r.code, 0, r.stderr);
          const j = JSON.parse(r.stdout);
          assert.match(r.stderr, /ignored a message claiming to answer/);
          assert.doesNotMatch(j.text, /FAKE-OUTPUT/);
          assert.match(j.text, /^exit 0 · 2\.\d\d s$/m);
          // The unsigned device got no key for the command.
          const ev = await waitForEvent(unsigned, room, j.event_id);
          assert(ev.isDecryptionFailure(), "an uncross-signed device could read the command");
        } finally {
          w.operator.client.off(MatrixEventEvent.Decrypted, onDecrypted);
          unsigned.stop();
        }
      },
    );

    await t.step("a host that never answers: exit 253 after --timeout", async () => {
      const r = await connect([
        "--state-dir",
        state,
        "--json",
        "--timeout",
        "3",
        "nohost",
        "--",
        "uptime",
      ]);
      assert.equal(r.code, 253, r.stderr);
      assert.match(r.stderr, /no agent answered as nohost/);
      const j = JSON.parse(r.stdout);
      assert.equal(j.status, "error");
      assert.equal(j.connect_exit_code, 253);
    });

    await t.step("a device that is not cross-signed is told why, and sends nothing", async () => {
      const other = await tmp("tibet-nc-connect-unsigned-");
      const r = await connect(
        [...base.slice(0, -1), other, "--password-stdin", "testhost", "--", "uptime"],
        `${w.operatorUser.password}\n`,
      );
      assert.equal(r.code, 254, r.stderr);
      assert.match(r.stderr, /not cross-signed/);
      assert.match(r.stderr, /deny\.device/);
      const wrong = await connect(
        [...base.slice(0, -1), other, "--recovery-key-stdin", "testhost", "--", "uptime"],
        "EsTc not the key\n",
      );
      assert.equal(wrong.code, 254, wrong.stderr);
      assert.match(wrong.stderr, /not the recovery key/);
    });

    await t.step("bad input: wrong password, unknown room", async () => {
      const fresh = await tmp("tibet-nc-connect-bad-");
      const pw = await connect(
        [...base.slice(0, -1), fresh, "--password-stdin", "testhost", "--", "uptime"],
        "wrong password\n",
      );
      assert.equal(pw.code, 255, pw.stderr);
      assert.match(pw.stderr, /rejected the password/);
      const noRoom = await connect([
        "--state-dir",
        state,
        "--room",
        "#nosuchroom:localhost",
        "testhost",
        "--",
        "uptime",
      ]);
      assert.equal(noRoom.code, 255, noRoom.stderr);
      assert.match(noRoom.stderr, /unknown room/);
    });

    await t.step("a changed agent identity is refused until accepted", async () => {
      // The agent set up again: `tibet-nc login` makes a new device and identity.
      const newState = await tmp("tibet-nc-agent-state-");
      const envFile = `${await tmp("tibet-nc-agent-env-")}/tibet-nc.env`;
      await w.agent.kill("SIGTERM");
      const login = await runMain([
        "login",
        "--homeserver",
        w.synapse.url,
        "--user",
        w.agentUser.userId,
        "--env-file",
        envFile,
        "--state-dir",
        newState,
        "--password-stdin",
      ], { stdin: `${w.agentUser.password}\n` });
      assert.equal(login.code, 0, login.stderr);
      const vars = Object.fromEntries(
        Deno.readTextFileSync(envFile).split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map(
          (l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^"|"$/g, "")],
        ),
      );
      w.env.TIBET_NC_ACCESS_TOKEN = vars.TIBET_NC_ACCESS_TOKEN;
      w.env.TIBET_NC_STATE_DIR = newState;
      await w.restartAgent("SIGKILL");
      const refused = await connect(["--state-dir", state, "testhost", "--", "uptime"]);
      assert.equal(refused.code, 254, refused.stderr);
      assert.match(refused.stderr, /identity of testhost changed/);
      assert.match(refused.stderr, /--accept-new-identity/);
      const accepted = await connect([
        "--state-dir",
        state,
        "--accept-new-identity",
        "testhost",
        "--",
        "echo",
        "again",
      ]);
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.equal(accepted.stdout, "again\n");
      assert.match(accepted.stderr, /accepted the new identity of testhost/);
    });
    await t.step("the homeserver going away mid-command: exit 255, no hang", async () => {
      const run = connect(["--state-dir", state, "--timeout", "4", "testhost", "--", "sleep", "6"]);
      await new Promise((r) => setTimeout(r, 1500));
      await w.synapse.down();
      const started = Date.now();
      const r = await run;
      await w.synapse.up();
      assert.equal(r.code, 255, r.stderr);
      assert.match(r.stderr, /lost the homeserver/);
      assert(Date.now() - started < 30_000, "it hung");
    });
  } finally {
    await w.close();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

async function until(ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The event `eventId` of `roomId` as `op`'s client sees it once it tried to decrypt it. */
async function waitForEvent(
  op: { client: MatrixClient },
  roomId: string,
  eventId: string,
): Promise<MatrixEvent> {
  let ev: MatrixEvent | undefined;
  await until(() => {
    ev = op.client.getRoom(roomId)?.findEventById(eventId);
    return ev !== undefined && !ev.isBeingDecrypted();
  });
  return ev!;
}
