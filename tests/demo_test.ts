import assert from "node:assert/strict";
import { watchProcess } from "./support/agent_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** The demo with its temporary files under `tmp`, so what it leaves behind can be seen. */
function demo(tmp: string, stdin: "piped" | "null" = "piped", env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "demo/demo.ts"],
    cwd: ROOT,
    env: { TMPDIR: tmp, NO_COLOR: "1", ...env },
    stdin,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000), // an answer it waits for forever fails the test
  }).spawn();
}

/** Processes whose command line or environment names `path` (Synapse, the agent, commands). */
function processesUsing(path: string): string[] {
  const found: string[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    for (const f of ["cmdline", "environ"]) {
      try {
        if (Deno.readTextFileSync(`/proc/${e.name}/${f}`).includes(path)) found.push(e.name);
      } catch { /* gone, or not ours to read */ }
    }
  }
  return [...new Set(found)];
}

function leftovers(tmp: string): { files: string[]; processes: string[] } {
  return {
    files: [...Deno.readDirSync(tmp)].map((e) => e.name),
    processes: processesUsing(tmp),
  };
}

Deno.test(
  "deno task demo answers every kind of reply, moves files, quietly, and cleans up",
  opts,
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "tibet-nc-demo-test-" });
    const local = await Deno.makeTempDir({ prefix: "tibet-nc-demo-local-" });
    try {
      const token = `demo-${crypto.randomUUID()}`;
      await Deno.writeTextFile(`${local}/upload.txt`, `uploaded ${token}\n`);
      const child = demo(tmp, "piped");
      const p = watchProcess(child, "demo");
      const banner = await p.waitFor(/^file dir /, 180_000);
      const dir = banner.match(/^file dir\s+(\S+):/)![1];
      const w = child.stdin.getWriter();
      // help and status carry no provenance line; a console waiting for one hangs.
      await w.write(
        new TextEncoder().encode(
          [
            `echo ${token}`,
            "sleep 3",
            "help",
            "status",
            `get ${dir}/hello.txt ${local}/hello.txt`,
            `put ${local}/upload.txt ${dir}`,
            `get ${dir}/upload.txt ${local}/back.txt`,
            "",
          ].join("\n"),
        ),
      );
      await w.close();
      const status = await p.status;
      const text = p.lines.join("\n");
      assert.equal(status.code, 0, text);
      assert.match(text, new RegExp(`^${token}$`, "m"), text);
      assert.match(text, /^exit 0 · 3\.\d\d s$/m, "the final result of a command that streams");
      assert.match(text, /^Built-ins:$/m, "help answered");
      assert.match(text, /^host: +demo$/m, "status answered");
      assert.match(text, /^\(saved \d+ bytes, decrypted and checked, to \S+\/hello\.txt\)$/m, text);
      assert.match(text, /^wrote \S+\/upload\.txt · /m, "put answered");
      assert.equal(
        await Deno.readTextFile(`${local}/back.txt`),
        `uploaded ${token}\n`,
        "the file went up and came back down",
      );
      // The console is `tibet-nc connect`, on a device of its own, cross-signed, the agent pinned.
      assert.match(text, /this device \(\S+\) is now cross-signed/, text);
      assert.match(text, /first connect to demo: pinned/, text);
      assert.match(text, /^demo\$ echo /m, text);
      assert.doesNotMatch(text, /no answer|error:/);
      assert.match(text, /stopping the agent and Synapse/);
      // The first screen is the demo's own: no SDK chatter.
      assert.doesNotMatch(text, /MatrixRTCSession|push rule|underride/, text);
      assert.match(text, /Synapse \S+ answers at http:\/\/127\.0\.0\.1:\d+/, "progress shown");
      assert.deepEqual(leftovers(tmp), { files: [], processes: [] });
    } finally {
      await Deno.remove(tmp, { recursive: true });
      await Deno.remove(local, { recursive: true });
    }
  },
);

Deno.test(
  "a signal to the demo stops the agent and Synapse and removes their files",
  opts,
  async (t) => {
    for (
      const [signal, code, when, stage] of [
        ["SIGTERM", 143, /^connected to demo/, "at the prompt"], // as `timeout` sends it
        ["SIGINT", 130, /answers at http/, "while starting"], // Ctrl-C: Synapse up, no agent yet
      ] as const
    ) {
      await t.step(
        `${signal} ${stage}`,
        async () => {
          const tmp = await Deno.makeTempDir({ prefix: "tibet-nc-demo-test-" });
          try {
            const p = watchProcess(demo(tmp), "demo");
            await p.waitFor(when, 180_000);
            assert.equal(await p.kill(signal), code, p.lines.join("\n"));
            assert.match(p.lines.join("\n"), /stopping the agent and Synapse/);
            assert.deepEqual(
              await leftovers(tmp),
              { files: [], processes: [] },
              p.lines.join("\n"),
            );
          } finally {
            await Deno.remove(tmp, { recursive: true });
          }
        },
      );
    }
  },
);
