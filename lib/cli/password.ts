/**
 * The one place a password is asked for: at the terminal without echo, or as a
 * line of stdin. Nothing else in tibet-nc reads a secret from a person.
 * @module
 */

/** No password to use; nothing was changed yet. */
export class PasswordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PasswordError";
  }
}

const CTRL_C = 0x03, CTRL_D = 0x04, CTRL_U = 0x15, BS = 0x08, DEL = 0x7f;

/** Reads a secret (a password, a recovery key) from the terminal with echo off; null when cancelled. */
export async function promptSecret(prompt: string): Promise<string | null> {
  const enc = new TextEncoder();
  Deno.stderr.writeSync(enc.encode(prompt));
  const bytes: number[] = [];
  const buf = new Uint8Array(256);
  let cancelled = false;
  Deno.stdin.setRaw(true);
  try {
    read: for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break read;
        if (b === CTRL_C || (b === CTRL_D && bytes.length === 0)) {
          cancelled = true;
          break read;
        }
        if (b === BS || b === DEL) {
          // Drop one UTF-8 character: its continuation bytes, then its lead byte.
          while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b === CTRL_U) bytes.length = 0;
        else if (b >= 0x20 || b === 0x09) bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(enc.encode("\n"));
  }
  return cancelled ? null : new TextDecoder().decode(new Uint8Array(bytes));
}

/** Reads one line from stdin (the rest is ignored). */
async function readPasswordLine(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
    if (buf.subarray(0, n).includes(0x0a) || total > 65536) break;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all).split("\n")[0].replace(/\r$/, "");
}

/**
 * The account password: typed at the terminal with echo off, or one line of
 * stdin when `fromStdin` or stdin is not a terminal (scripts, `--password-stdin`).
 */
export async function readPassword(userId: string, fromStdin: boolean): Promise<string> {
  let password: string | null;
  if (fromStdin || !Deno.stdin.isTerminal()) password = await readPasswordLine();
  else {
    password = await promptSecret(`password for ${userId}: `);
    if (password === null) throw new PasswordError("cancelled; nothing was changed");
  }
  if (password === "") throw new PasswordError("no password given; nothing was changed");
  return password;
}
