/**
 * The shape of one built-in argument rule. Rules are data: the judge runs every
 * rule whose programs include the command's program, and `tibet-nc doctor`
 * reads the same list to warn about programs that escape through arguments.
 * @module
 */

/** The command as rules see it: every name the program goes by, and its NFKC arguments. */
export interface Cmd {
  /** Normalised names of the program (typed, bin-dir entry, link target, without versions). */
  keys: Set<string>;
  args: string[];
  /** Directories no write may name besides the system ones (the agent's state dir). */
  protect: readonly string[];
  /** The program reads a pipe: it is a stage after a `|`. */
  piped: boolean;
}

/** A refusal: the rule id and why, in words for the operator. */
export type Hit = { rule: string; why: string } | null;

/** One built-in argument rule. */
export interface ArgRule {
  /** The rule id its refusals usually carry (a check may return another, e.g. `systemctl edit`). */
  id: string;
  /** Normalised program names it inspects; empty: every program. */
  programs: readonly string[];
  /**
   * For escape rules: how these programs reach a shell or a file through their
   * arguments, one line for `tibet-nc doctor`. Absent for rules that guard
   * something else (power, disks, the root tree).
   */
  escape?: string;
  /** Returns the refusal, or null when the arguments pass this rule. */
  check: (c: Cmd) => Hit;
}

/** True if the program goes by one of `names`. */
export const is = (c: Cmd, ...names: string[]): boolean => names.some((n) => c.keys.has(n));
