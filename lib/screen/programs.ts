/**
 * Which commands are screen programs: their PTY output goes through the
 * terminal emulator (`emulator.ts`) and the reply is the rendered screen.
 *
 * The rule, judged on a single command (a pipeline's output is a stream, never a
 * screen): the program's bin-dir name or its real name (every symlink resolved)
 * is in {@linkcode SCREEN_PROGRAMS}, and it was not asked for its batch or text
 * mode (`top -b`, `atop` with an interval count, `iotop -b`, `iftop -t`, `nmon
 * -f`, `glances --stdout`...), which prints plain lines like any command. Any
 * other command becomes one with the `screen=yes` prefix.
 * @module
 */

/** Programs that paint a full screen when they run on a terminal. */
export const SCREEN_PROGRAMS: ReadonlySet<string> = new Set([
  "top",
  "htop",
  "atop",
  "iotop",
  "iftop",
  "nethogs",
  "glances",
  "btop",
  "bpytop",
  "bashtop",
  "nmon",
  "powertop",
  "iptraf-ng",
  "nload",
  "bmon",
  "slabtop",
  "pg_top",
  "mytop",
  "ctop",
  "vmtop",
]);

/**
 * Options that switch a screen program to plain line output. Short options are
 * also found bundled (`-bn1`); only the letters listed for that program count.
 */
const BATCH: Record<string, { long: string[]; short: string }> = {
  top: { long: ["--batch"], short: "b" },
  iotop: { long: ["--batch"], short: "b" },
  iftop: { long: [], short: "t" },
  nethogs: { long: [], short: "t" },
  atop: { long: [], short: "" }, // `atop -w FILE` writes raw records; judged below
  glances: { long: ["--stdout", "--stdout-csv", "--export", "--quiet"], short: "" },
  nmon: { long: [], short: "f" },
  slabtop: { long: ["--once"], short: "o" },
  btop: { long: [], short: "" },
  powertop: { long: ["--csv", "--html", "--workload"], short: "" },
};

/** True when `argv` (argv[0] as typed) asks its program for plain, non-screen output. */
function batchMode(name: string, argv: readonly string[]): boolean {
  const b = BATCH[name];
  if (!b) return false;
  for (const a of argv.slice(1)) {
    if (a === "--") break;
    if (b.long.some((l) => a === l || a.startsWith(`${l}=`))) return true;
    if (/^-[A-Za-z0-9]/.test(a) && !a.startsWith("--")) {
      // Letters before the first digit: `-bn1` is -b -n 1, `-d5` is -d 5.
      const letters = a.slice(1).match(/^[A-Za-z]*/)![0];
      if ([...b.short].some((c) => letters.includes(c))) return true;
    }
  }
  // atop with an interval and count, or writing a raw file, prints no screen.
  if (name === "atop") return argv.slice(1).some((a) => a === "-w" || a === "-P");
  return false;
}

/** One judged stage: argv as typed, the bin-dir entry name and the real program's name. */
export interface ScreenCandidate {
  argv: readonly string[];
  name: string;
  realName: string;
}

/**
 * Whether the command (its stages) is a screen program by the rule of the
 * module doc; `forced` is the `screen=yes` prefix, which makes any single
 * command one.
 */
export function isScreenCommand(stages: readonly ScreenCandidate[], forced: boolean): boolean {
  if (stages.length !== 1) return false;
  if (forced) return true;
  const [s] = stages;
  const known = [s.name, s.realName].filter((n) => SCREEN_PROGRAMS.has(n));
  if (known.length === 0) return false;
  return !known.some((n) => batchMode(n, s.argv));
}
