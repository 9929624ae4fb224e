/**
 * `deno task compile [--target TRIPLE]...`: builds `dist/tibet-nc` (or
 * `dist/tibet-nc-<arch>` for another target) with the permission flags of the
 * `start` task, so the binary and `deno task start` behave the same.
 *
 * `deno compile` needs the `denort` runtime of the same Deno version for each
 * target. Deno downloads it from its own host unless DENORT_BIN names a file;
 * where that host is unreachable, set DENORT_BIN (one target per run then).
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const HOST = Deno.build.target;

/** The permission flags of the start task (the single source of truth). */
export async function startFlags(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  return String(cfg.tasks.start).split(/\s+/).filter((w) => w.startsWith("--"));
}

async function main(args: string[]): Promise<number> {
  const targets: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--target" && args[i + 1]) targets.push(args[++i]);
    else {
      console.error(
        `usage: deno task compile [--target TRIPLE]...\n(targets: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu)`,
      );
      return 2;
    }
  }
  if (targets.length === 0) targets.push(HOST);
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    try {
      await Deno.stat(denort);
    } catch {
      console.error(`compile: DENORT_BIN=${denort} does not exist`);
      return 1;
    }
    if (targets.length > 1) {
      console.error("compile: with DENORT_BIN, build one target per run (denort is per target)");
      return 2;
    }
  }
  const flags = await startFlags();
  await Deno.mkdir(`${ROOT}dist`, { recursive: true });
  for (const target of targets) {
    const arch = target.split("-")[0];
    const output = `${ROOT}dist/${target === HOST ? "tibet-nc" : `tibet-nc-${arch}`}`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        ...flags,
        "--include",
        `${ROOT}lib/worker/worker.ts`,
        "--include",
        `${ROOT}lib/audit/verify_worker.ts`,
        "--target",
        target,
        "--output",
        output,
        `${ROOT}main.ts`,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) {
      if (!denort) {
        console.error(
          "compile: deno compile failed; if it could not download denort, set DENORT_BIN to the denort binary of Deno " +
            `${Deno.version.deno} for ${target}`,
        );
      }
      return 1;
    }
    console.log(`built ${output}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
