/**
 * The environment of a command's process, built from scratch. Nothing is copied
 * from the agent's own environment, so the access token, the store passphrase and
 * every `TIBET_NC_*` setting can never reach a child, and the pager
 * and editor variables close the classic escape hatches of a PTY.
 * @module
 */

/** Fixed terminal size announced to children; chat output has no real window. */
export const CHILD_COLUMNS = 120;
/** Fixed terminal height announced to children. */
export const CHILD_LINES = 40;

/** Inputs of {@linkcode childEnv}. */
export interface ChildEnvOptions {
  /** The allowlisted binary directory; it is the child's whole `PATH`. */
  binDir: string;
  /** The exec user's home directory. */
  home: string;
  /** Locale; `C.UTF-8` when absent, because output is decoded as UTF-8. */
  lang?: string;
  /**
   * A screen program (`lib/screen/programs.ts`), whose output a terminal
   * emulator renders: it gets `TERM=xterm-256color`, since top and htop refuse
   * or misdraw on `dumb`.
   */
  screen?: boolean;
}

/**
 * Returns the complete environment for a command's process.
 *
 * `TERM=dumb`: output is rendered as plain text in a chat message and ANSI
 * sequences are stripped anyway, so asking programs not to colour, move the
 * cursor or paint full screens gives smaller, cleaner output than
 * `xterm-256color` and makes screen-painting programs (top, editors) refuse or
 * degrade instead of drawing a screen nobody sees. A screen program is the
 * exception (`screen`): its screen is emulated and shown. There is deliberately no
 * `EDITOR` or `VISUAL`.
 *
 * @throws Error when `binDir` or `home` is not an absolute path, or `binDir`
 * contains `:` (it would split into several `PATH` entries).
 */
export function childEnv(opts: ChildEnvOptions): Record<string, string> {
  const { binDir, home } = opts;
  if (!binDir.startsWith("/") || binDir.includes(":")) {
    throw new Error(
      `bin dir "${binDir}" must be an absolute path without ":" (check TIBET_NC_BIN_DIR)`,
    );
  }
  if (!home.startsWith("/")) {
    throw new Error(`home directory "${home}" of the exec user must be an absolute path`);
  }
  return {
    PATH: binDir,
    HOME: home,
    TERM: opts.screen ? "xterm-256color" : "dumb",
    LANG: opts.lang ?? "C.UTF-8",
    PAGER: "cat",
    SYSTEMD_PAGER: "cat",
    GIT_PAGER: "cat",
    MANPAGER: "cat",
    LESSSECURE: "1",
    SYSTEMD_COLORS: "0",
    NO_COLOR: "1",
    COLUMNS: String(CHILD_COLUMNS),
    LINES: String(CHILD_LINES),
  };
}
