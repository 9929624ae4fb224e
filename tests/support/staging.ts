/**
 * Tests that run something as another user need that user to reach it. From a
 * checkout others cannot enter (under /root, a 0700 home), the Deno binary and
 * the code are staged once per test process in a world-readable temporary dir,
 * removed at exit; elsewhere the checkout itself is used.
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Where another user finds Deno and this checkout's code, and a Deno cache it may write. */
export interface Staged {
  deno: string;
  root: string;
  denoDir: string;
}

/** True if a user who is neither owner nor group can enter every directory above `path`. */
export function othersCanReach(path: string): boolean {
  const parts = path.split("/").filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = "/" + parts.slice(0, i).join("/");
    try {
      if ((Deno.statSync(dir).mode! & 0o001) === 0) return false;
    } catch {
      return false;
    }
  }
  return true;
}

let staged: Promise<Staged> | undefined;

/** A copy (or the original) of Deno and the code of main.ts, readable by every user. */
export function stagedForOthers(): Promise<Staged> {
  staged ??= (async () => {
    const denoDir = await Deno.makeTempDir({ prefix: "tibet-nc-deno-dir-" });
    Deno.chmodSync(denoDir, 0o1777);
    const cleanup = [denoDir];
    globalThis.addEventListener("unload", () => {
      for (const d of cleanup) Deno.removeSync(d, { recursive: true });
    });
    if (othersCanReach(Deno.execPath()) && othersCanReach(`${ROOT}/main.ts`)) {
      return { deno: Deno.execPath(), root: ROOT, denoDir };
    }
    const dir = await Deno.makeTempDir({ prefix: "tibet-nc-staged-" });
    cleanup.push(dir);
    Deno.chmodSync(dir, 0o755);
    const run = async (cmd: string, args: string[]) => {
      const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
      if (!out.success) {
        throw new Error(
          `cannot stage the checkout for another user: ${cmd} ${args.join(" ")}: ${
            new TextDecoder().decode(out.stderr)
          }`,
        );
      }
    };
    const code = ["main.ts", "deno.json", "deno.lock", "lib", "node_modules"];
    await run("cp", ["-a", ...code.map((p) => `${ROOT}/${p}`), dir]);
    await Deno.copyFile(Deno.execPath(), `${dir}/deno`);
    await run("chmod", ["-R", "a+rX", dir]);
    Deno.chmodSync(`${dir}/deno`, 0o755);
    return { deno: `${dir}/deno`, root: dir, denoDir };
  })();
  return staged;
}
