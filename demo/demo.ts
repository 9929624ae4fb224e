/**
 * `deno task demo`: a local Synapse, an operator and an agent account, an
 * encrypted room, the agent running, and `tibet-nc connect` as the console on
 * this terminal: what an operator uses, not a test fixture. The demo sets up
 * the operator's recovery key; the console's first run logs in a device of its
 * own, cross-signs it with that key and pins the agent; then the interactive
 * prompt. Ctrl-D, SIGTERM or a closed terminal ends it and stops and removes
 * everything it started. Stdin may also be a pipe (`echo uptime | deno task
 * demo`). `--verbose` shows the SDK's and the agent's logs. Files: `get PATH
 * [LOCAL]` saves into the current directory (or LOCAL), `put LOCAL DIR` sends one.
 * @module
 */

import { startWorld } from "../tests/support/fixture.ts";
import { onExit } from "../tests/support/cleanup.ts";
import { firstConnectArgs } from "../tests/support/connect.ts";

/** Programs the demo's bin dir offers: the read-only diagnostics of the original's README. */
const DEMO_PROGRAMS = [
  "uptime",
  "df",
  "free",
  "date",
  "whoami",
  "hostname",
  "uname",
  "echo",
  "ls",
  "cat",
  "ps",
  "id",
  "tty",
  "sleep",
  "env",
];

const say = (s: string) => console.log(s);
const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** The agent's host name: the console's prompt and target. */
const HOST = "demo";

/** `main.ts connect ARGS`, as the `tibet-nc` binary runs it. */
function connect(args: string[], stdin: "piped" | "inherit"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-worker-options", MAIN, "connect", ...args],
    stdin,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
}

async function main(args: string[]): Promise<number> {
  const verbose = args.includes("--verbose") || args.includes("-v");
  if (args.some((a) => a !== "--verbose" && a !== "-v")) {
    console.error("usage: deno task demo [--verbose]");
    return 2;
  }
  if (verbose) Deno.env.set("TIBET_NC_TEST_VERBOSE", "1"); // the agent's log on stderr
  onExit(() => say("\nstopping the agent and Synapse, removing their files ..."));
  say("tibet-nc demo: starting a local Synapse (127.0.0.1), an agent and an operator ...");
  const fileDir = await Deno.makeTempDir({ prefix: "tibet-nc-demo-files-" });
  const stateDir = await Deno.makeTempDir({ prefix: "tibet-nc-demo-connect-" });
  const removeFiles = async () => {
    for (const d of [fileDir, stateDir]) await Deno.remove(d, { recursive: true }).catch(() => {});
  };
  onExit(removeFiles);
  let shell: Deno.ChildProcess | null = null;
  onExit(() => {
    try {
      shell?.kill("SIGTERM");
    } catch { /* it ended */ }
  });
  await Deno.writeTextFile(`${fileDir}/hello.txt`, "hello from the agent's file dir\n");
  const w = await startWorld(
    { TIBET_NC_FILE_DIRS: fileDir, TIBET_NC_HOSTNAME: HOST },
    DEMO_PROGRAMS,
    undefined,
    { progress: (msg) => say(`  ${msg}`), sdkLog: verbose ? "warnings" : "silent" },
  );
  try {
    const agentId = w.agentUser.userId;
    const recoveryKey = await w.operator.setUpRecovery();
    const room = await w.operator.createRoom([agentId]);
    await w.operator.waitForJoin(room, agentId);
    say(`homeserver ${w.synapse.url}`);
    say(`operator   ${w.operatorUser.userId} (password ${w.operatorUser.password})`);
    say(`recovery   ${recoveryKey}`);
    say(`agent      ${agentId} (device ${w.agentUser.deviceId}, host name ${HOST})`);
    say(`room       ${room} (end-to-end encrypted)`);
    say(`commands   ${DEMO_PROGRAMS.join(" ")}; built-ins help status chain jobs cancel`);
    say(`files      state ${w.stateDir}, bin ${w.binDir}, Synapse ${w.synapse.dir}`);
    say(`file dir   ${fileDir}: try \`get ${fileDir}/hello.txt\` or \`put ./a-file ${fileDir}\``);
    say("\nThe console is `tibet-nc connect`. Its first run logs in a device of its own,");
    say("cross-signs it with the recovery key and pins the agent:\n");
    const common = ["--state-dir", stateDir, ...(verbose ? ["--verbose"] : [])];
    const first = connect([
      ...firstConnectArgs(w, room, stateDir),
      "--password-stdin",
      "--recovery-key-stdin",
      ...(verbose ? ["--verbose"] : []),
      HOST,
      "--",
      "hosts",
    ], "piped");
    const secrets = first.stdin.getWriter();
    await secrets.write(new TextEncoder().encode(`${w.operatorUser.password}\n${recoveryKey}\n`));
    await secrets.close();
    const firstStatus = await first.status;
    if (!firstStatus.success) {
      say(`the console could not connect (exit ${firstStatus.code})`);
      return 1;
    }
    say(`\nThe console now: tibet-nc connect --state-dir ${stateDir} ${HOST}`);
    say("Type a command such as `uptime`; Ctrl-C cancels a running one; Ctrl-D ends the demo.\n");
    shell = connect([...common, HOST], "inherit");
    const status = await shell.status;
    shell = null;
    return status.success ? 0 : status.code;
  } finally {
    say("\nstopping the agent and Synapse, removing their files ...");
    await w.close();
    await removeFiles();
  }
}

Deno.exit(await main(Deno.args));
