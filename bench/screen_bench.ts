/**
 * The cost of the terminal emulator: `top -d 1` runs BENCH_SCREEN_S seconds (60)
 * under the agent's runner (util-linux `script`) twice, once with a sink that
 * only counts bytes (the baseline: `script` alone) and once feeding the screen
 * emulator and rendering it every 3 s, as a screen program's reply does. Prints
 * the CPU time of this process and its peak RSS growth for each.
 *
 * Run: `./deno run -A bench/screen_bench.ts`.
 * @module
 */

import process from "node:process";
import { runCommand } from "../lib/exec/run.ts";
import { childEnv } from "../lib/exec/child_env.ts";
import { createScreen } from "../lib/screen/emulator.ts";
import { makeBinDir } from "../tests/support/fixture.ts";

const SECONDS = Number(Deno.env.get("BENCH_SCREEN_S") ?? 60);

function peakRss(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+) kB/m);
  return Number(m![1]) * 1024;
}

async function once(binDir: string, withScreen: boolean) {
  const screen = withScreen ? createScreen() : null;
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const rss0 = peakRss();
  const h = runCommand({
    argv: ["top", "-d", "1"],
    path: `${binDir}/top`,
    env: childEnv({ binDir, home: "/tmp", screen: true }),
    cwd: "/",
    timeoutMs: SECONDS * 1000,
    maxOutputBytes: 1e12,
  }, (chunk) => {
    bytes += chunk.length;
    screen?.push(chunk);
  });
  const render = setInterval(() => screen?.render(), 3000);
  await h.done;
  clearInterval(render);
  await screen?.settled();
  const lines = screen?.render().split("\n").length ?? 0;
  screen?.dispose();
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    rssGrowthMiB: (peakRss() - rss0) / 1048576,
    bytes,
    lines,
  };
}

const binDir = await makeBinDir(["top"]);
try {
  const base = await once(binDir, false);
  const emu = await once(binDir, true);
  console.log(`top -d 1 for ${SECONDS} s (${navigator.hardwareConcurrency} cores)`);
  console.log(`| run | CPU of the agent's side | peak RSS growth | bytes |`);
  console.log(`|---|---|---|---|`);
  for (const [name, r] of [["script alone (count bytes)", base], ["+ emulator", emu]] as const) {
    console.log(
      `| ${name} | ${r.cpuMs} ms | ${r.rssGrowthMiB.toFixed(1)} MiB | ${r.bytes} |`,
    );
  }
} finally {
  await Deno.remove(binDir, { recursive: true });
}
