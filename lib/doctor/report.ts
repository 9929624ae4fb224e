/**
 * What doctor prints: one line per finding, and the helpers its checks share.
 * @module
 */

export type Level = "ok" | "warn" | "FAIL";

/** Prints findings as they come and remembers whether any failed. */
export class Report {
  failed = false;
  line(level: Level, check: string, detail: string): void {
    if (level === "FAIL") this.failed = true;
    console.log(`${level.padEnd(4)} ${check}: ${detail}`);
  }
}

export const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
export const errText = (e: unknown) => (e as Error).message ?? String(e);
/** fetch errors keep the useful part (refused, DNS, TLS) in their cause. */
export const netText = (e: unknown) => {
  const cause = (e as Error).cause;
  const inner = cause instanceof Error
    ? cause.message.replace(/^error sending request[^:]*: /, "")
    : "";
  return inner ? `${errText(e)}: ${inner}` : errText(e);
};

/** "name (uid N)" from /etc/passwd, or "uid N". */
export function userLabel(uid: number | null): string {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && Number(f[2]) === uid) return `${f[0]} (uid ${uid})`;
    }
  } catch { /* no name then */ }
  return `uid ${uid}`;
}

export function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
