import assert from "node:assert/strict";
import { startSynapse } from "./support/synapse.ts";
import { startOperator } from "./support/operator.ts";
import { startAgentProcess } from "./support/agent_process.ts";
import { makeBinDir } from "./support/fixture.ts";
import { updateEnvText } from "../lib/config/env_file.ts";
import { type CliRun, runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type Run = CliRun;

/** Runs `tibet-nc login` with `stdin` piped in. */
function login(args: string[], stdin: string): Promise<Run> {
  return runMain(["login", ...args], { stdin });
}

async function api(
  homeserver: string,
  token: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const r = await fetch(`${homeserver}/_matrix/client/v3/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  assert.ok(r.ok, `${path}: HTTP ${r.status} ${JSON.stringify(json)}`);
  return json;
}

function envLines(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z_]+)=(.*)$/);
    if (m) (out[m[1]] ??= []).push(m[2]);
  }
  return out;
}

const mode = async (path: string) => ((await Deno.stat(path)).mode ?? 0) & 0o777;

Deno.test("updateEnvText replaces only its keys, drops their duplicates, keeps the rest", () => {
  const before = "# hand-written\nA=1\nTOKEN=old\nexport TOKEN=older\n\nB=2";
  assert.equal(
    updateEnvText(before, { TOKEN: "new", DEVICE: "D1" }),
    "# hand-written\nA=1\nTOKEN=new\n\nB=2\nDEVICE=D1\n",
  );
  assert.equal(updateEnvText("", { A: "1" }), "A=1\n");
});

Deno.test(
  "login: password login, env file, cross-signing, fingerprint; the agent then answers",
  opts,
  async (t) => {
    const synapse = await startSynapse();
    const dir = await Deno.makeTempDir({ prefix: "tibet-nc-login-" });
    const binDir = await makeBinDir();
    const cleanups: (() => unknown)[] = [];
    try {
      const operatorUser = await synapse.register("operator", crypto.randomUUID());
      const password = `pw ${crypto.randomUUID()} é`;
      const bot = await synapse.register("bot", password);
      const stateDir = `${dir}/state`;
      const envFile = `${dir}/tibet-nc.env`;
      const handWritten = [
        "# tibet-nc settings, kept by hand",
        `TIBET_NC_ALLOWED_USERS=${operatorUser.userId}`,
        "TIBET_NC_ACCESS_TOKEN=stale-token",
        `TIBET_NC_STATE_DIR=${stateDir}`,
        `TIBET_NC_BIN_DIR=${binDir}`,
        "TIBET_NC_EXEC_AS_SELF=yes",
        "TIBET_NC_HOSTNAME=testhost",
        "",
      ].join("\n");
      await Deno.writeTextFile(envFile, handWritten, { mode: 0o600 });
      await Deno.chmod(envFile, 0o600);
      const flags = [
        "--homeserver",
        synapse.url,
        "--user",
        bot.userId,
        "--env-file",
        envFile,
        "--password-stdin",
      ];
      const devices = async () =>
        (await api(synapse.url, bot.accessToken, "devices")).devices as {
          device_id: string;
          display_name?: string;
        }[];

      await t.step("usage errors exit 2", async () => {
        const r = await login(["--homeserver", synapse.url], "x\n");
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--user is required/);
        const bad = await login(["--homeserver", "not a url", "--user", bot.userId], "x\n");
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /--homeserver: "not a url" is not a URL/);
      });

      await t.step("a wrong password exits 1 with a clear message and writes nothing", async () => {
        const r = await login(flags, "wrong password\n");
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`the homeserver rejected the password for ${bot.userId}`),
        );
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
        assert.equal(await Deno.readTextFile(envFile), handWritten);
        assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["tibet-nc.env"]);
        assert.equal((await devices()).length, 1);
      });

      await t.step("a world-readable env file is refused before the password is sent", async () => {
        const open = `${dir}/open.env`;
        await Deno.writeTextFile(open, "TIBET_NC_HOSTNAME=x\n");
        await Deno.chmod(open, 0o644);
        const r = await login(
          [...flags.slice(0, 4), "--env-file", open, "--password-stdin"],
          `${password}\n`,
        );
        assert.equal(r.code, 1);
        assert.match(r.stderr, /world-readable \(mode 0644\).*chmod 600/);
        assert.equal(await Deno.readTextFile(open), "TIBET_NC_HOSTNAME=x\n");
        assert.equal((await devices()).length, 1);
        await Deno.remove(open);
      });

      let deviceId = "";
      let stdout = "";
      let token = "";
      await t.step("login writes the env file 0600, keeping its other lines", async () => {
        const r = await login([...flags, "--device-name", "agent under test"], `${password}\n`);
        assert.equal(r.code, 0, r.stderr);
        stdout = r.stdout;
        assert.equal(await mode(envFile), 0o600);
        const text = await Deno.readTextFile(envFile);
        const vars = envLines(text);
        for (const line of handWritten.split("\n").filter((l) => !l.includes("ACCESS_TOKEN"))) {
          assert.ok(text.includes(line), `kept: ${line}`);
        }
        assert.equal(vars.TIBET_NC_ACCESS_TOKEN.length, 1);
        token = vars.TIBET_NC_ACCESS_TOKEN[0];
        assert.notEqual(token, "stale-token");
        assert.deepEqual(vars.MATRIX_HOMESERVER, [synapse.url]);
        assert.deepEqual(vars.TIBET_NC_USER_ID, [bot.userId]);
        deviceId = vars.TIBET_NC_DEVICE_ID[0];
        assert.match(stdout, new RegExp(`device id: +${deviceId}`));
        assert.equal(await mode(stateDir), 0o700);
        const bound = JSON.parse(await Deno.readTextFile(`${stateDir}/device.json`));
        assert.deepEqual(bound, { userId: bot.userId, deviceId });
        const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.includes(".tmp"));
        assert.deepEqual(leftovers, []);
      });

      await t.step("the device exists on the homeserver and the token is its own", async () => {
        const list = await devices();
        const mine = list.find((d) => d.device_id === deviceId);
        assert.ok(mine, `device ${deviceId} listed`);
        assert.equal(mine.display_name, "agent under test");
        const who = await api(synapse.url, token, "account/whoami");
        assert.equal(who.device_id, deviceId);
      });

      await t.step("the printed fingerprint and master key are the published ones", async () => {
        const keys = await api(synapse.url, bot.accessToken, "keys/query", {
          device_keys: { [bot.userId]: [] },
        });
        const dev =
          (keys.device_keys as Record<string, Record<string, { keys: Record<string, string> }>>)[
            bot.userId
          ][deviceId];
        const ed = dev.keys[`ed25519:${deviceId}`];
        const printed = stdout.match(/device fingerprint: +([A-Za-z0-9+/ ]+)/)![1];
        assert.match(printed, /^(\S{4} )+\S{1,4}$/, "groups of four");
        assert.equal(printed.replaceAll(" ", ""), ed);
        const master = Object.values(
          (keys.master_keys as Record<string, { keys: Record<string, string> }>)[bot.userId].keys,
        )[0];
        assert.equal(
          stdout.match(/master key: +([A-Za-z0-9+/ ]+)/)![1].replaceAll(" ", ""),
          master,
        );
      });

      const operator = await startOperator(synapse.url, operatorUser);
      cleanups.push(() => operator.stop());

      await t.step("a second login into the same state dir is refused", async () => {
        const before = (await devices()).length;
        const r = await login(flags, `${password}\n`);
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          new RegExp(`already holds the keys of ${bot.userId} device ${deviceId}`),
        );
        assert.equal((await devices()).length, before, "no device was created");
        assert.equal(envLines(await Deno.readTextFile(envFile)).TIBET_NC_ACCESS_TOKEN[0], token);
      });

      await t.step("operators left as in the example file are a warning", async () => {
        const pw = crypto.randomUUID();
        const other = await synapse.register("bot-example", pw);
        const exampleEnv = `${dir}/example.env`;
        await Deno.writeTextFile(exampleEnv, "TIBET_NC_ALLOWED_USERS=@alice:example.org\n", {
          mode: 0o600,
        });
        const r = await login([
          "--homeserver",
          synapse.url,
          "--user",
          other.userId,
          "--env-file",
          exampleEnv,
          "--state-dir",
          `${dir}/state-example`,
          "--password-stdin",
        ], `${pw}\n`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /warning: TIBET_NC_ALLOWED_USERS in .*example\.env still lists @alice:example\.org from the example file/,
        );
        assert.doesNotMatch(stdout, /example file/, "the first login named real operators");
      });

      let room = "";
      await t.step("an agent started with that env file joins the operator's room", async () => {
        const agent = await startAgentProcess({}, ["--env-file", envFile]);
        cleanups.push(() => agent.kill("SIGKILL"));
        await agent.waitFor(/^ready:/);
        assert.ok(
          agent.lines.some((l) => l.includes(`device ${deviceId}`)),
          agent.lines.join("\n"),
        );
        room = await operator.createRoom([bot.userId]);
        await operator.waitForJoin(room, bot.userId);
      });

      await t.step("operators see the agent's device as cross-signed by its owner", async () => {
        const c = operator.client.getCrypto()!;
        await c.getUserDeviceInfo([bot.userId], true);
        const status = await c.getDeviceVerificationStatus(bot.userId, deviceId);
        assert.equal(status?.signedByOwner, true);
      });

      await t.step("and answers the operator's `$ echo <canary>`, encrypted", async () => {
        const canary = crypto.randomUUID();
        const id = await operator.send(room, `$ echo ${canary}`);
        const reply = await operator.waitForReply(room, id);
        assert.equal(reply.getWireType(), "m.room.encrypted");
        assert.match(reply.getContent().body, new RegExp(canary));
      });
    } finally {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
      await synapse.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(binDir, { recursive: true }).catch(() => {});
    }
  },
);
