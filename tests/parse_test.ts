import assert from "node:assert/strict";
import { MAX_ARGS, MAX_TEXT, parseCommand, type ParseResult } from "../lib/exec/parse.ts";

function stages(text: string): string[][] {
  const r = parseCommand(text);
  assert.ok(r.ok, `expected "${text}" to parse, got: ${r.ok ? "" : r.reason}`);
  return r.stages;
}

function argv(text: string): string[] {
  const s = stages(text);
  assert.equal(s.length, 1, `expected "${text}" to be one command`);
  return s[0];
}

function refusal(text: string): string {
  const r: ParseResult = parseCommand(text);
  assert.ok(!r.ok, `expected "${text}" to be refused, got ${JSON.stringify(r)}`);
  return r.reason;
}

Deno.test("parse: words split on spaces and tabs, repeated blanks collapse", () => {
  assert.deepEqual(argv("df -h"), ["df", "-h"]);
  assert.deepEqual(argv("  journalctl   --user\t-n  50  "), ["journalctl", "--user", "-n", "50"]);
});

Deno.test("parse: a trailing newline from a chat client is dropped", () => {
  assert.deepEqual(argv("uptime\n"), ["uptime"]);
  assert.deepEqual(argv("uptime\r\n"), ["uptime"]);
});

Deno.test("parse: single quotes keep everything literal, shell syntax included", () => {
  assert.deepEqual(argv("echo '$(id)'"), ["echo", "$(id)"]);
  assert.deepEqual(argv("echo ';'"), ["echo", ";"]);
  assert.deepEqual(argv("echo 'a | b && c > d `e` \\n'"), ["echo", "a | b && c > d `e` \\n"]);
});

Deno.test('parse: double quotes are literal; backslash escapes only " \\ $ and backtick', () => {
  assert.deepEqual(argv('echo "a b" "$(id)" "x;y"'), ["echo", "a b", "$(id)", "x;y"]);
  assert.deepEqual(argv('echo "say \\"hi\\"" "c:\\\\d" "\\$HOME" "\\n"'), [
    "echo",
    'say "hi"',
    "c:\\d",
    "$HOME",
    "\\n",
  ]);
});

Deno.test("parse: quotes join with adjacent text into one word", () => {
  assert.deepEqual(argv(`'re''boot'`), ["reboot"]);
  assert.deepEqual(argv(`"re"boot`), ["reboot"]);
  assert.deepEqual(argv(`a'b c'd`), ["ab cd"]);
});

Deno.test("parse: empty quotes are an empty argument, not nothing", () => {
  assert.deepEqual(argv("echo '' \"\""), ["echo", "", ""]);
});

Deno.test("parse: an unquoted backslash escapes the next character", () => {
  assert.deepEqual(argv("re\\boot"), ["reboot"]);
  assert.deepEqual(argv("echo a\\ b \\; \\| \\$\\(id\\)"), ["echo", "a b", ";", "|", "$(id)"]);
  assert.deepEqual(argv("find . -exec sh \\;"), ["find", ".", "-exec", "sh", ";"]);
});

Deno.test("parse: globs, tilde, variables, braces, ! and # pass literally (never expanded)", () => {
  assert.deepEqual(argv("ls /etc/*.conf ? [ab] {a,b} ~ ~/x $HOME ${HOME} !! #x a=b"), [
    "ls",
    "/etc/*.conf",
    "?",
    "[ab]",
    "{a,b}",
    "~",
    "~/x",
    "$HOME",
    "${HOME}",
    "!!",
    "#x",
    "a=b",
  ]);
});

Deno.test("parse: unquoted command separators and chaining are refused with the reason", () => {
  assert.match(refusal("uptime; reboot"), /column 7.*`;` separates commands/);
  assert.match(refusal("uptime && reboot"), /`&&` chains commands/);
  assert.match(refusal("uptime || reboot"), /`\|\|` chains commands/);
  assert.match(refusal("reboot &"), /background/);
  assert.match(refusal("a&b"), /background/);
});

Deno.test("parse: substitution and redirection are refused", () => {
  assert.match(refusal("echo $(id)"), /command substitution/);
  assert.match(refusal("echo $((1+1))"), /command substitution/);
  assert.match(refusal("echo `id`"), /backticks/);
  assert.match(refusal("echo x > /etc/passwd"), /redirection/);
  assert.match(refusal("cat < /etc/shadow"), /redirection/);
  assert.match(refusal("ls 2>&1"), /redirection/);
  assert.match(refusal("diff <(ls) x"), /redirection/);
});

Deno.test("parse: parentheses and the classic fork bomb are refused", () => {
  assert.match(refusal(":(){ :|:& };:"), /shell syntax/);
  assert.match(refusal("(reboot)"), /shell syntax/);
});

Deno.test("parse: every refusal tells the operator that quoting passes it literally", () => {
  assert.match(refusal("a;b"), /no shell|without a shell/);
  assert.match(refusal("a;b"), /quote it/);
});

Deno.test("parse: a newline between words is refused; a quoted newline is kept", () => {
  assert.match(refusal("uptime\nreboot"), /newline.*one command per message/);
  assert.match(refusal("uptime \\\nreboot"), /backslash-newline/);
  assert.deepEqual(argv("awk 'BEGIN {\n print 1 }'"), ["awk", "BEGIN {\n print 1 }"]);
});

Deno.test("parse: unterminated quotes are refused with the column of the quote", () => {
  assert.match(refusal("echo 'abc"), /unterminated single quote opened at column 6/);
  assert.match(refusal('echo "abc'), /unterminated double quote/);
  assert.match(refusal("echo abc\\"), /trailing backslash/);
});

Deno.test("parse: empty and blank text is refused", () => {
  assert.equal(refusal(""), "empty command");
  assert.equal(refusal("   \t \n"), "empty command");
});

Deno.test("parse: NUL and other C0 controls and DEL are refused, even quoted or escaped", () => {
  assert.match(refusal("echo a\0b"), /NUL byte at column 7/);
  assert.match(refusal("echo 'a\x01'"), /control character 0x01/);
  assert.match(refusal("echo \\\x1b[31m"), /control character 0x1B/);
  assert.match(refusal("echo a\x7f"), /control character 0x7F/);
  assert.match(refusal("echo a\rb"), /control character 0x0D/);
});

Deno.test("parse: a quoted tab is kept inside the word", () => {
  assert.deepEqual(argv("printf 'a\tb'"), ["printf", "a\tb"]);
});

Deno.test("parse: non-ASCII text is passed on for the policy to judge", () => {
  assert.deepEqual(argv("echo héllo 日本"), ["echo", "héllo", "日本"]);
  assert.deepEqual(argv("reb\u200boot"), ["reb\u200boot"]);
  // Only ASCII blanks separate words: a no-break space stays inside the word.
  assert.deepEqual(argv("reboot\u00a0now"), ["reboot\u00a0now"]);
});

Deno.test("parse: text longer than the limit is refused with both lengths", () => {
  const ok = "echo " + "a".repeat(MAX_TEXT - 5);
  assert.equal(argv(ok).length, 2);
  assert.match(
    refusal(ok + "a"),
    new RegExp(`${MAX_TEXT + 1} characters long; the limit is ${MAX_TEXT}`),
  );
  assert.match(refusal("echo " + "a".repeat(10_000)), /limit is 4096/);
});

Deno.test("parse: more words than the limit are refused with both counts", () => {
  const words = (n: number) => ["echo", ...Array(n - 1).fill("x")].join(" ");
  assert.equal(argv(words(MAX_ARGS)).length, MAX_ARGS);
  assert.match(
    refusal(words(MAX_ARGS + 1)),
    new RegExp(`${MAX_ARGS + 1} arguments; the limit is ${MAX_ARGS}`),
  );
});

Deno.test("parse: an unquoted | splits the line into pipeline stages", () => {
  assert.deepEqual(stages("ps aux | grep nginx"), [["ps", "aux"], ["grep", "nginx"]]);
  assert.deepEqual(stages("journalctl -u x -n 500|grep -i error |tail -20"), [
    ["journalctl", "-u", "x", "-n", "500"],
    ["grep", "-i", "error"],
    ["tail", "-20"],
  ]);
  assert.deepEqual(stages("grep 'a|b' f | cut -d'|' -f2 | tr \\| x"), [
    ["grep", "a|b", "f"],
    ["cut", "-d|", "-f2"],
    ["tr", "|", "x"],
  ]);
});

Deno.test("parse: an empty stage, |&, || and too many stages are refused", () => {
  assert.match(refusal("| grep x"), /column 1: a `\|` needs a command on each side/);
  assert.match(refusal("ps aux |"), /needs a command on each side/);
  assert.match(refusal("ps | | grep x"), /column 6: a `\|` needs a command on each side/);
  assert.match(refusal("ps |& grep x"), /`\|&` pipes stderr too/);
  assert.match(refusal("ps || grep x"), /`\|\|` chains commands/);
  assert.match(refusal(Array(9).fill("cat").join(" | ")), /9 stages; the limit is 8/);
  assert.deepEqual(stages(Array(8).fill("cat").join(" | ")).length, 8);
  assert.match(refusal("ps | grep x > out"), /redirection/);
});
