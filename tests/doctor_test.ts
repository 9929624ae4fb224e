import assert from "node:assert/strict";
import { freePort, startSynapse } from "./support/synapse.ts";
import { startOperator } from "./support/operator.ts";
import { type AgentProcess, startAgentProcess } from "./support/agent_process.ts";
import { makeBinDir } from "./support/fixture.ts";
import { lookupUser } from "../lib/exec/exec_user.ts";
import { type CliRun, runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type Run = CliRun;

/** Runs `tibet-nc login` or `tibet-nc doctor`. */
function cli(command: "login" | "doctor", args: string[], stdin = ""): Promise<Run> {
  return runMain([command, ...args], { stdin });
}

/** Asserts a line `<level> <check>: ...` matching `re` exists. */
function has(run: Run, level: "ok" | "warn" | "FAIL", check: string, re: RegExp = /./): void {
  const prefix = `${level.padEnd(4)} ${check}: `;
  assert.ok(
    run.lines.some((l) => l.startsWith(prefix) && re.test(l.slice(prefix.length))),
    `expected "${prefix}" matching ${re} in:\n${run.stdout}${run.stderr}`,
  );
}

/** Writes a variant of `base` with `changes` (null removes a variable). */
async function variant(
  base: string,
  path: string,
  changes: Record<string, string | null>,
  mode = 0o600,
): Promise<string> {
  const kept = (await Deno.readTextFile(base)).split("\n")
    .filter((l) => l && !Object.hasOwn(changes, l.split("=")[0]));
  const added = Object.entries(changes).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`);
  await Deno.writeTextFile(path, [...kept, ...added].join("\n") + "\n");
  await Deno.chmod(path, mode);
  return path;
}

Deno.test("doctor: --help and unknown arguments", async () => {
  const help = await cli("doctor", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: tibet-nc doctor/);
  const bad = await cli("doctor", ["--bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown argument "--bogus"/);
});

Deno.test(
  "doctor: a healthy install is ok, each broken part is a FAIL naming it",
  opts,
  async (t) => {
    const synapse = await startSynapse();
    const dir = await Deno.makeTempDir({ prefix: "tibet-nc-doctor-" });
    const binDir = await makeBinDir();
    const cleanups: (() => unknown)[] = [];
    try {
      const operatorUser = await synapse.register("operator", crypto.randomUUID());
      const password = crypto.randomUUID();
      const bot = await synapse.register("bot", password);
      const stateDir = `${dir}/state`;
      const envFile = `${dir}/tibet-nc.env`;
      const passphrase = crypto.randomUUID();
      await Deno.writeTextFile(
        envFile,
        [
          `TIBET_NC_ALLOWED_USERS=${operatorUser.userId}`,
          `TIBET_NC_STATE_DIR=${stateDir}`,
          `TIBET_NC_BIN_DIR=${binDir}`,
          "TIBET_NC_EXEC_AS_SELF=yes",
          "TIBET_NC_HOSTNAME=testhost",
          `TIBET_NC_STORE_PASSPHRASE=${passphrase}`,
          "",
        ].join("\n"),
        { mode: 0o600 },
      );
      const loggedIn = await cli(
        "login",
        ["--homeserver", synapse.url, "--user", bot.userId, "--env-file", envFile],
        `${password}\n`,
      );
      assert.equal(loggedIn.code, 0, loggedIn.stderr);

      let agent: AgentProcess = await startAgentProcess({}, ["--env-file", envFile]);
      cleanups.push(() => agent.kill("SIGKILL"));
      await agent.waitFor(/^ready:/);
      const operator = await startOperator(synapse.url, operatorUser);
      cleanups.push(() => operator.stop());
      const room = await operator.createRoom([bot.userId]);
      await operator.waitForJoin(room, bot.userId);
      const echo = async () => {
        const canary = crypto.randomUUID();
        const id = await operator.send(room, `$ echo ${canary}`);
        assert.match(await operator.waitForFinal(room, id), new RegExp(canary));
      };
      await echo();

      await t.step("healthy, beside the running agent: only ok and warn, exit 0", async () => {
        const r = await cli("doctor", ["--env-file", envFile]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        for (const l of r.lines) assert.match(l, /^(ok {3}|warn )[a-z ]+: /);
        has(r, "ok", "env file", /mode 0600/);
        has(r, "ok", "config", new RegExp(bot.userId));
        has(r, "ok", "state dir", /mode 0700/);
        has(r, "ok", "state files");
        has(r, "warn", "guarantees", /^TIBET_NC_EXEC_AS_SELF=yes: commands run as the agent's/);
        has(r, "ok", "bin dir", /programs, all executable/);
        has(r, "ok", "homeserver", /answers in \d+ ms/);
        has(r, "ok", "clock", /within 2 s/);
        has(r, "ok", "access token", new RegExp(bot.userId));
        has(r, "ok", "device");
        has(r, "ok", "crypto store", /database\(s\) readable.*encrypted at rest/);
        has(r, "ok", "audit log", /[1-9]\d* record\(s\) verified, head [0-9a-f]{16}/);
      });

      await t.step("doctor did not disturb the store: the agent restarts and answers", async () => {
        await echo(); // the agent writes to its crypto store after doctor read it
        await agent.kill("SIGKILL");
        agent = await startAgentProcess({}, ["--env-file", envFile]);
        await agent.waitFor(/^ready:/);
        await echo();
      });

      await t.step("a shell or an escape-prone program in the bin dir is a warning", async () => {
        const added: string[] = [];
        for (const p of ["bash", "awk"]) {
          const target = [`/usr/bin/${p}`, `/bin/${p}`].find((x) => {
            try {
              return Deno.statSync(x).isFile;
            } catch {
              return false;
            }
          });
          if (target) {
            await Deno.symlink(target, `${binDir}/${p}`);
            added.push(p);
          }
        }
        assert.ok(added.includes("bash"), "bash is on this machine");
        const r = await cli("doctor", ["--env-file", envFile]);
        for (const p of added) await Deno.remove(`${binDir}/${p}`);
        assert.equal(r.code, 0, r.stdout);
        has(r, "warn", "bin dir", /^bash.*refuses it outright \(deny\.shell/);
        if (added.includes("awk")) has(r, "warn", "bin dir", /^awk.*GTFOBins.*deny\.escape\.awk/);
        // Every program allowed is told with the functions the policy leaves open.
        if (added.includes("awk")) {
          has(r, "ok", "bin dir", /^awk.*left open: file read \(what the exec user may read\);/);
        }
        assert.doesNotMatch(
          r.stdout,
          /^ok\s+bin dir: bash.*left open/m,
          "a refused program is not listed",
        );
      });

      await t.step("broken: open env file and state dir, no bin dir, wrong token", async () => {
        const broken = await variant(envFile, `${dir}/broken.env`, {
          TIBET_NC_ACCESS_TOKEN: "syt_not_a_valid_token",
          TIBET_NC_DEVICE_ID: null,
          TIBET_NC_BIN_DIR: `${dir}/no-such-bin`,
        }, 0o644);
        await Deno.chmod(stateDir, 0o755);
        try {
          const r = await cli("doctor", ["--env-file", broken]);
          assert.equal(r.code, 1);
          has(r, "FAIL", "env file", /mode 0644: every local user can read/);
          has(r, "FAIL", "state dir", /mode 0755.*chmod 700/);
          has(r, "FAIL", "bin dir", /no-such-bin does not exist \(TIBET_NC_BIN_DIR\)/);
          has(r, "FAIL", "access token", /TIBET_NC_ACCESS_TOKEN: the homeserver rejected it/);
          assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, "no stack trace");
        } finally {
          await Deno.chmod(stateDir, 0o700);
        }
      });

      await t.step("broken: unreachable homeserver", async () => {
        const path = await variant(envFile, `${dir}/unreachable.env`, {
          MATRIX_HOMESERVER: `http://127.0.0.1:${freePort()}`,
        });
        const r = await cli("doctor", ["--env-file", path]);
        assert.equal(r.code, 1);
        has(
          r,
          "FAIL",
          "homeserver",
          /cannot reach http:\/\/127\.0\.0\.1:\d+ \(MATRIX_HOMESERVER\)/,
        );
      });

      await t.step("broken: wrong store passphrase, invalid variable", async () => {
        const wrong = await variant(envFile, `${dir}/wrong-pass.env`, {
          TIBET_NC_STORE_PASSPHRASE: "not the passphrase",
        });
        const r = await cli("doctor", ["--env-file", wrong]);
        assert.equal(r.code, 1);
        has(r, "FAIL", "crypto store", /TIBET_NC_STORE_PASSPHRASE does not open/);
        const invalid = await variant(envFile, `${dir}/invalid.env`, {
          TIBET_NC_TIMEBOX: "soon",
          TIBET_NC_USER_ID: null,
          TIBET_NC_ALLOWED_USERS: "alice",
        });
        const r2 = await cli("doctor", ["--env-file", invalid]);
        assert.equal(r2.code, 1);
        // Every problem at once, so one edit of the env file fixes them all.
        has(r2, "FAIL", "config", /^TIBET_NC_TIMEBOX: /);
        has(r2, "FAIL", "config", /^TIBET_NC_USER_ID: is required/);
        has(r2, "FAIL", "config", /^TIBET_NC_ALLOWED_USERS: "alice" is not a Matrix user id/);
      });

      await t.step(
        "settings that weaken a guarantee, and example values, are warnings",
        async () => {
          const weak = await variant(envFile, `${dir}/weak.env`, {
            TIBET_NC_ALLOW_UNSIGNED_DEVICES: "yes",
            TIBET_NC_ALLOWED_USERS: `${operatorUser.userId},@alice:example.org`,
          });
          const r = await cli("doctor", ["--env-file", weak]);
          assert.equal(r.code, 0, r.stdout);
          has(r, "warn", "guarantees", /^TIBET_NC_ALLOW_UNSIGNED_DEVICES=yes: a device its owner/);
          has(r, "warn", "config", /still lists @alice:example\.org from the example file/);
          const plain = await cli("doctor", ["--env-file", envFile]);
          assert.ok(!plain.lines.some((l) => /ALLOW_UNSIGNED|example file/.test(l)), plain.stdout);
        },
      );

      const nobody = lookupUser("nobody");
      await t.step({
        name: "as root: the exec user is tried on the state dir's files",
        ignore: Deno.uid() !== 0 || nobody === null,
        fn: async () => {
          const asNobody = await variant(envFile, `${dir}/nobody.env`, {
            TIBET_NC_EXEC_AS_SELF: "no",
            TIBET_NC_EXEC_USER: "nobody",
          });
          await Deno.chmod(binDir, 0o755);
          const r = await cli("doctor", ["--env-file", asNobody]);
          has(r, "ok", "exec user", /"nobody" \(uid \d+\) cannot read .*device\.json.*\(tried\)/);
          // The privileged lane's user is checked the same way.
          const lanes = await variant(envFile, `${dir}/lanes.env`, {
            TIBET_NC_EXEC_AS_SELF: "no",
            TIBET_NC_EXEC_USER: "nobody",
            TIBET_NC_APPROVED_EXEC_USER: "no-such-user-x",
          });
          const l = await cli("doctor", ["--env-file", lanes]);
          has(
            l,
            "FAIL",
            "approved exec user",
            /TIBET_NC_APPROVED_EXEC_USER: user "no-such-user-x"/,
          );
          const daemon = await variant(envFile, `${dir}/daemon.env`, {
            TIBET_NC_EXEC_AS_SELF: "no",
            TIBET_NC_EXEC_USER: "nobody",
            TIBET_NC_APPROVED_EXEC_USER: "daemon",
          });
          has(
            await cli("doctor", ["--env-file", daemon]),
            "ok",
            "approved exec user",
            /"daemon" \(uid \d+\)/,
          );
          // Opened up along the whole path, as a careless install would.
          await Deno.chmod(dir, 0o755);
          await Deno.chmod(stateDir, 0o755);
          await Deno.chmod(`${stateDir}/device.json`, 0o644);
          try {
            const open = await cli("doctor", ["--env-file", asNobody]);
            assert.equal(open.code, 1);
            has(open, "FAIL", "exec user", /"nobody" could read .*device\.json/);
          } finally {
            await Deno.chmod(`${stateDir}/device.json`, 0o600);
            await Deno.chmod(stateDir, 0o700);
            await Deno.chmod(dir, 0o700);
            await Deno.chmod(binDir, 0o700);
          }
        },
      });
    } finally {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
      await synapse.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(binDir, { recursive: true }).catch(() => {});
    }
  },
);
