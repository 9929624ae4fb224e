/**
 * A screen program's terminal, emulated (`@xterm/headless`), so the reply shows
 * what a person at a real terminal would see instead of escape-sequence soup.
 *
 * Memory is bounded by the screen, not by the output: no scrollback, and bytes
 * waiting to be parsed are capped at {@linkcode SCREEN_LAG_BYTES}. The emulator
 * parses in slices on the event loop and is slower than a PTY can write (about
 * 8 MB/s of dense escape sequences on one core), so a program flooding the
 * terminal would otherwise queue its whole output in the emulator's write
 * buffer. Past the cap new bytes are skipped and counted; a screen program
 * repaints whole frames, so the next frame read in full is right again.
 *
 * The size is ours (COLUMNS x LINES of `child_env.ts`); a program's own resize
 * requests (`CSI 8 ; rows ; cols t`) are ignored because xterm's window options
 * are all off by default. Two spare rows below the screen absorb what programs
 * print when they leave (top moves to row LINES+1 and prints a newline), which
 * would otherwise scroll the first line of the last frame away.
 * @module
 */

import xterm from "@xterm/headless";
import { CHILD_COLUMNS, CHILD_LINES } from "../exec/child_env.ts";

/** Bytes handed to the emulator and not yet parsed, at most; more are skipped. */
export const SCREEN_LAG_BYTES = 4 * 1024 * 1024;
/** Rows below the screen that take a leaving program's last newline without scrolling. */
const SPARE_ROWS = 2;

/** An emulated terminal fed with a program's PTY output. */
export interface Screen {
  /** Feeds raw PTY bytes (copied when kept); never throws, never blocks. */
  push(chunk: Uint8Array): void;
  /** The visible screen as text, trailing blanks of each line and trailing empty lines cut. */
  render(): string;
  /** Resolves once every byte pushed so far has been parsed. */
  settled(): Promise<void>;
  /** Bytes skipped because the emulator lagged more than {@linkcode SCREEN_LAG_BYTES}. */
  readonly skippedBytes: number;
  /** Frees the emulator. */
  dispose(): void;
}

/** Options of {@linkcode createScreen}; the defaults are the size children are told. */
export interface ScreenOptions {
  cols?: number;
  rows?: number;
  lagBytes?: number;
}

/** Creates an emulated terminal of `cols` x `rows` with no scrollback. */
export function createScreen(opts: ScreenOptions = {}): Screen {
  const cols = opts.cols ?? CHILD_COLUMNS;
  const rows = opts.rows ?? CHILD_LINES;
  const lagBytes = opts.lagBytes ?? SCREEN_LAG_BYTES;
  const term = new xterm.Terminal({
    cols,
    rows: rows + SPARE_ROWS,
    scrollback: 0,
    allowProposedApi: true,
  });
  let pending = 0;
  let skipped = 0;
  let disposed = false;
  let waiters: (() => void)[] = [];
  const wake = () => {
    if (pending > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  return {
    push(chunk) {
      if (disposed || chunk.length === 0) return;
      if (pending + chunk.length > lagBytes) {
        skipped += chunk.length;
        return;
      }
      pending += chunk.length;
      const n = chunk.length;
      // The runner reuses its read buffer, and xterm keeps the array until parsed.
      term.write(chunk.slice(), () => {
        pending -= n;
        wake();
      });
    },
    render() {
      const buf = term.buffer.active;
      const lines: string[] = [];
      for (let y = 0; y < rows; y++) {
        lines.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? "");
      }
      while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
      return lines.join("\n");
    },
    settled() {
      if (pending === 0 || disposed) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    get skippedBytes() {
      return skipped;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      pending = 0;
      wake();
      term.dispose();
    },
  };
}
