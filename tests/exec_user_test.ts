import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { startAgentProcess } from "./support/agent_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const isRoot = Deno.uid() === 0;
const why = isRoot ? "" : " (skipped: needs root to switch users)";

Deno.test({
  name:
    `commands run as the exec user cannot read the state dir, env file, signing key or the agent's environ${why}`,
  ignore: !isRoot,
  ...opts,
  async fn(t) {
    const secret = `env-file-canary-${crypto.randomUUID()}`;
    const envDir = await Deno.makeTempDir();
    const envFile = `${envDir}/tibet-nc.env`;
    await Deno.writeTextFile(envFile, `TIBET_NC_HOSTNAME=testhost\nCANARY=${secret}\n`, {
      mode: 0o600,
    });
    const w = await startWorld(
      { TIBET_NC_EXEC_AS_SELF: "no", TIBET_NC_EXEC_USER: "nobody" },
      undefined,
      async (binDir) => {
        await Deno.chmod(binDir, 0o755); // the exec user must reach its programs
      },
    );
    try {
      const { operator } = w;
      const room = await operator.createRoom([w.agentUser.userId]);
      await operator.waitForJoin(room, w.agentUser.userId);
      const run = async (text: string) =>
        await operator.waitForFinal(room, await operator.send(room, `$ ${text}`));

      await t.step("commands run as nobody", async () => {
        assert.match(await run("id -un"), /^nobody$/m);
      });
      const targets = [
        `${w.stateDir}/signing_key.jwk`,
        `${w.stateDir}/audit.jsonl`,
        `${w.stateDir}/device.json`,
        envFile,
        `/proc/${w.agent.pid}/environ`,
      ];
      for (const path of targets) {
        await t.step(`cat ${path.replace(w.stateDir, "$STATE")} is denied`, async () => {
          const body = await run(`cat ${path}`);
          assert.match(body, /Permission denied/);
          assert.doesNotMatch(body, /^exit 0/m);
          assert.ok(!body.includes(secret) && !body.includes(w.agentUser.accessToken));
        });
      }
      await t.step("ls of the state dir is denied", async () => {
        assert.match(await run(`ls ${w.stateDir}`), /Permission denied/);
      });
    } finally {
      await w.close();
      await Deno.remove(envDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `an agent that cannot switch users refuses to start unless told to run commands as itself${why}`,
  ignore: !isRoot,
  async fn() {
    const stateDir = await Deno.makeTempDir();
    await Deno.chown(stateDir, 65534, 65534);
    const env = {
      MATRIX_HOMESERVER: "http://127.0.0.1:9",
      TIBET_NC_USER_ID: "@agent:localhost",
      TIBET_NC_ACCESS_TOKEN: "token",
      TIBET_NC_ALLOWED_USERS: "@op:localhost",
      TIBET_NC_STATE_DIR: stateDir,
      TIBET_NC_EXEC_USER: "daemon",
    };
    // The agent itself as nobody: no root, no CAP_SETUID.
    const agent = await startAgentProcess(env, [], { uid: 65534, gid: 65534 });
    const code = await agent.status.then((s) => s.code);
    assert.equal(code, 78, "a configuration error: the unit must not restart it");
    assert.ok(
      agent.lines.some((l) =>
        /TIBET_NC_EXEC_USER: the agent cannot switch to "daemon".*TIBET_NC_EXEC_AS_SELF=yes/.test(l)
      ),
      agent.lines.join("\n"),
    );
    await Deno.remove(stateDir, { recursive: true });
  },
});
