/**
 * Runs inside a Worker with the agent's permissions and reports what it could
 * do: what an attacker who took over the agent's code would get.
 * @module
 */

interface Probe {
  allowedUrl: string;
  otherUrl: string;
  stateDir: string;
  /** The libc the monitor opens; the worker must not. */
  libcPath: string;
}

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<Probe>) => void) | null;
};

async function attempt(f: () => unknown): Promise<string> {
  try {
    await f();
    return "ok";
  } catch (e) {
    return (e as Error).name;
  }
}

scope.onmessage = async (e) => {
  const p = e.data;
  scope.postMessage({
    fetchHomeserver: await attempt(async () => (await fetch(p.allowedUrl)).body?.cancel()),
    fetchOther: await attempt(async () => (await fetch(p.otherUrl)).body?.cancel()),
    spawnShell: await attempt(() =>
      new Deno.Command("/bin/sh", { args: ["-c", "true"] }).outputSync()
    ),
    spawnSetpriv: await attempt(() =>
      new Deno.Command("/usr/bin/setpriv", { args: ["--version"] }).outputSync()
    ),
    kill: await attempt(() => Deno.kill(1, "SIGCONT")),
    readEtc: await attempt(() => Deno.readTextFileSync("/etc/hostname")),
    writeTmp: await attempt(() => Deno.writeTextFileSync("/tmp/tibet-nc-probe", "x")),
    writeOwnState: await attempt(() => Deno.writeTextFileSync(`${p.stateDir}/seen-events`, "")),
    writeOtherState: await attempt(() => Deno.writeTextFileSync(`${p.stateDir}/probe`, "x")),
    env: await attempt(() => Deno.env.get("HOME")),
    ffi: await attempt(() => Deno.dlopen(p.libcPath, {})),
  });
};
