/**
 * Operator text to argv, without a shell. The text is split into words with the
 * quoting rules of a POSIX shell, and into pipeline stages at an unquoted `|`,
 * and nothing else of a shell: no expansion, no redirection, no second command.
 * The argv of each stage that is judged by the policy is exactly the argv that
 * runs; the monitor connects the stages itself (`lib/exec/pipeline.ts`).
 *
 * Per character, outside quotes:
 *
 * | text                          | decision | why                                              |
 * |-------------------------------|----------|--------------------------------------------------|
 * | space, tab                    | split    | word separator                                   |
 * | `'…'`                         | quote    | everything inside is literal                     |
 * | `"…"`                         | quote    | literal; `\` escapes only `"` `\` `$` `` ` ``    |
 * | `\x`                          | escape   | `x` literally (so `re\boot` is `reboot`)         |
 * | `;`                           | refuse   | a second command                                 |
 * | `&&`, `\|\|`                  | refuse   | command chaining                                 |
 * | `\|`                          | stage    | starts the next stage of a pipeline              |
 * | `\|&`                         | refuse   | it pipes stderr too (a bash extension)           |
 * | `&`                           | refuse   | background jobs                                  |
 * | `` ` ``, `$(`                 | refuse   | command substitution                             |
 * | `>`, `<`                      | refuse   | redirection (also `2>&1`, `<(…)`)                |
 * | `(`, `)`                      | refuse   | subshells and function definitions (fork bombs)  |
 * | newline between words         | refuse   | one command per message                          |
 * | `*` `?` `[` `]` `{` `}` `~`   | literal  | never expanded: no shell runs, no globbing       |
 * | `$VAR`, `${VAR}`, `!`, `#`, `=` | literal | never expanded; `#` starts no comment           |
 * | NUL, other C0 controls, DEL   | refuse   | invisible, and NUL cannot be passed to exec      |
 *
 * Inside quotes every character above is literal, newlines included, so
 * `echo '$(id)'` gives `["echo", "$(id)"]`. Leading and trailing ASCII whitespace
 * (a trailing newline from a chat client) is dropped; other Unicode is kept for
 * the policy to judge. Limits: {@linkcode MAX_TEXT} characters, {@linkcode MAX_ARGS}
 * words in all, {@linkcode MAX_STAGES} stages; no stage may be empty.
 * @module
 */

/** Result of {@linkcode parseCommand}. */
export type ParseResult =
  /** One argv per stage: a plain command is a pipeline of one stage. */
  | { ok: true; stages: string[][] }
  | { ok: false; reason: string };

/** Longest command text accepted, in UTF-16 code units. */
export const MAX_TEXT = 4096;
/** Most words (program included) accepted. */
export const MAX_ARGS = 256;
/** Most stages of one pipeline. */
export const MAX_STAGES = 8;

const NO_SHELL = "commands run without a shell";

/** Why each unquoted metacharacter is refused; the key is the longest match. */
const REFUSED: ReadonlyArray<[string, string]> = [
  ["&&", "`&&` chains commands"],
  ["||", "`||` chains commands"],
  ["$(", "`$(…)` is command substitution"],
  [";", "`;` separates commands; one command runs per message"],
  ["|&", "`|&` pipes stderr too; plain `|` pipes stdout, and stderr is shown anyway"],
  ["&", "`&` runs a command in the background"],
  ["`", "backticks are command substitution"],
  [">", "`>` is redirection"],
  ["<", "`<` is redirection"],
  ["(", "`(` is shell syntax (subshell or function)"],
  [")", "`)` is shell syntax (subshell or function)"],
];

/** Characters a double-quoted backslash escapes (POSIX); before others it stays. */
const DQ_ESCAPABLE = new Set(['"', "\\", "$", "`"]);

function isRefusedControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return (code < 0x20 && c !== "\t" && c !== "\n") || code === 0x7f;
}

function describeControl(c: string): string {
  const hex = c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase();
  return c === "\0" ? "NUL byte" : `control character 0x${hex}`;
}

/**
 * Splits operator text into argv, or says why it is refused.
 *
 * @example
 * ```ts
 * parseCommand(`echo 'a b' "c"`); // { ok: true, stages: [["echo", "a b", "c"]] }
 * parseCommand("ps aux | grep x"); // { ok: true, stages: [["ps", "aux"], ["grep", "x"]] }
 * parseCommand("ls; id"); // { ok: false, reason: "refused at column 3: `;` …" }
 * ```
 */
export function parseCommand(text: string): ParseResult {
  if (text.length > MAX_TEXT) {
    return {
      ok: false,
      reason: `command is ${text.length} characters long; the limit is ${MAX_TEXT}`,
    };
  }
  const lead = /^[ \t\r\n]*/.exec(text)?.[0].length ?? 0;
  const body = text.slice(lead).replace(/[ \t\r\n]+$/, "");
  if (body === "") return { ok: false, reason: "empty command" };
  const col = (i: number): number => lead + i + 1;

  const stages: string[][] = [];
  let argv: string[] = [];
  let stageStart = 0;
  let word = "";
  let inWord = false; // distinguishes '' (an empty argument) from no word
  let quote: "'" | '"' | null = null;
  let quoteStart = 0;
  const refuse = (i: number, why: string): ParseResult => ({
    ok: false,
    reason: `refused at column ${col(i)}: ${why} (${NO_SHELL}; quote it to pass it literally)`,
  });

  for (let i = 0; i < body.length; i++) {
    if (isRefusedControl(body[i])) {
      return {
        ok: false,
        reason: `${describeControl(body[i])} at column ${col(i)} is not allowed`,
      };
    }
  }

  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < body.length && DQ_ESCAPABLE.has(body[i + 1])) {
        word += body[++i];
      } else if (c === "\\" && body[i + 1] === "\n") i++; // POSIX line continuation
      else word += c;
      continue;
    }
    if (c === " " || c === "\t") {
      if (inWord) argv.push(word);
      word = "";
      inWord = false;
      continue;
    }
    if (c === "\n") {
      return {
        ok: false,
        reason: `refused at column ${col(i)}: a newline starts a second command; ` +
          `send one command per message (${NO_SHELL})`,
      };
    }
    const refused = REFUSED.find(([m]) => body.startsWith(m, i));
    if (refused) return refuse(i, refused[1]);
    if (c === "|") {
      if (inWord) argv.push(word);
      if (argv.length === 0) return emptyStage(i);
      stages.push(argv);
      argv = [];
      word = "";
      inWord = false;
      stageStart = i;
      continue;
    }
    inWord = true;
    if (c === "'" || c === '"') {
      quote = c;
      quoteStart = i;
    } else if (c === "\\") {
      if (i + 1 >= body.length) {
        return { ok: false, reason: "trailing backslash: it escapes nothing" };
      }
      if (body[i + 1] === "\n") {
        return refuse(i, "a backslash-newline joins lines; send the command on one line");
      }
      word += body[++i];
    } else {
      word += c;
    }
  }
  if (quote) {
    return {
      ok: false,
      reason: `unterminated ${quote === "'" ? "single" : "double"} quote opened at column ${
        col(quoteStart)
      }`,
    };
  }
  if (inWord) argv.push(word);
  if (argv.length === 0) return emptyStage(stageStart);
  stages.push(argv);
  const words = stages.reduce((n, s) => n + s.length, 0);
  if (words > MAX_ARGS) {
    return { ok: false, reason: `${words} arguments; the limit is ${MAX_ARGS}` };
  }
  if (stages.length > MAX_STAGES) {
    return {
      ok: false,
      reason: `a pipeline of ${stages.length} stages; the limit is ${MAX_STAGES}`,
    };
  }
  return { ok: true, stages };

  function emptyStage(i: number): ParseResult {
    return {
      ok: false,
      reason: `refused at column ${col(i)}: a \`|\` needs a command on each side`,
    };
  }
}
