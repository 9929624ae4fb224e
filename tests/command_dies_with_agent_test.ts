/**
 * A command started by the runner dies with the process that started it
 * (`setpriv --pdeathsig`), even one that ignores the hangup of its terminal,
 * and also once that process's helper threads have come and gone: the tie is
 * to the thread that spawned the command.
 */
import assert from "node:assert/strict";
import { processesWith } from "./support/processes.ts";

/** True while `/bin/sleep <marker>` itself runs. */
async function sleeping(marker: string): Promise<boolean> {
  for (const pid of await processesWith(marker)) {
    try {
      if (await Deno.readTextFile(`/proc/${pid}/cmdline`) === `/bin/sleep\0${marker}\0`) {
        return true;
      }
    } catch { /* gone */ }
  }
  return false;
}

async function waitUntil(cond: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("a command dies with the agent: SIGKILL of the process that started it ends it", async () => {
  const marker = `100.${crypto.getRandomValues(new Uint32Array(1))[0]}`;
  const lib = (p: string) => JSON.stringify(new URL(`../lib/exec/${p}`, import.meta.url).href);
  const code = `
    import { runCommand } from ${lib("run.ts")};
    import { childEnv } from ${lib("child_env.ts")};
    const env = childEnv({ binDir: "/usr/bin", home: "/tmp" });
    // Deaf to the hangup its terminal gets when the agent's end closes.
    const argv = ["sh", "-c", 'trap "" HUP; exec /bin/sleep ${marker}'];
    runCommand({ argv, path: "/bin/sh", env, timeoutMs: 60_000, maxOutputBytes: 1024 }, () => {});
    // Work on helper threads meanwhile, as the agent does.
    setInterval(() => Deno.readTextFile("/proc/self/stat"), 10);
  `;
  const agent = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitUntil(() => sleeping(marker), "sleep to start", 10_000);
    // Longer than an idle helper thread of the runtime lives (10 s).
    await new Promise((r) => setTimeout(r, 11_000));
    assert.ok(await sleeping(marker), "the command must run on while its agent does");
    agent.kill("SIGKILL");
    await agent.status;
    await waitUntil(
      async () => !await sleeping(marker),
      "the command to die with its agent",
      5_000,
    );
  } finally {
    try {
      agent.kill("SIGKILL");
    } catch { /* already gone */ }
    await agent.status;
  }
});
