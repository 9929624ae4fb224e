/**
 * A program under a pseudo-terminal, driven like a person at a terminal: keys
 * typed into it, its screen read through a terminal emulator (`@xterm/headless`).
 * `script` gives it the terminal (as the agent's own runs do); the size is set
 * with `stty` before the program starts.
 * @module
 */

import xterm from "@xterm/headless";

/** A running program on a terminal. */
export interface PtyProgram {
  /** Types `keys` (use `\r` for Enter, `\x03` for Ctrl-C, `\x04` for Ctrl-D). */
  type(keys: string): Promise<void>;
  /** The screen as text, one line per row, trailing blanks cut. */
  screen(): string;
  /**
   * Waits until the screen matches `re`; returns the screen. With `joined`,
   * the rows are matched as one line, as text wrapped on a narrow terminal reads.
   */
  waitFor(re: RegExp, timeoutMs?: number, joined?: boolean): Promise<string>;
  /** The program's exit status. */
  status: Promise<Deno.CommandStatus>;
  kill(): void;
}

/** Starts `argv` on a `columns`×`rows` terminal with `env` added to this process's. */
export function startPty(
  argv: string[],
  opts: { env?: Record<string, string>; columns?: number; rows?: number } = {},
): PtyProgram {
  const columns = opts.columns ?? 100, rows = opts.rows ?? 30;
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'"'"'`)}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfec", `stty cols ${columns} rows ${rows}; exec ${quoted}`, "/dev/null"],
    env: { SHELL: "/bin/sh", TERM: "xterm-256color", ...opts.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const term = new xterm.Terminal({ cols: columns, rows, allowProposedApi: true });
  const writer = child.stdin.getWriter();
  (async () => {
    for await (const chunk of child.stdout) term.write(chunk);
  })();
  child.stderr.pipeTo(new WritableStream()).catch(() => {});
  const screen = () => {
    const buf = term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < rows; i++) {
      out.push(buf.getLine(buf.viewportY + i)?.translateToString(true) ?? "");
    }
    return out.join("\n").replace(/\n+$/, "");
  };
  return {
    async type(keys) {
      await writer.write(new TextEncoder().encode(keys));
    },
    screen,
    async waitFor(re, timeoutMs = 60_000, joined = false) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // The emulator parses asynchronously: let it catch up before each look.
        await new Promise<void>((r) => term.write("", r));
        const s = screen();
        if (re.test(joined ? s.replace(/\n/g, "") : s)) return s;
        if (Date.now() > deadline) {
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${re}; screen:\n${s}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    status: child.status,
    kill: () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}
