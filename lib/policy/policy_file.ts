/**
 * The administrator's policy file: `{"mode": "denylist"|"allowlist", "allow":
 * [...], "deny": [...], "approve": [...], "operators": [...]}`, its patterns and
 * how they match an argv. Patterns come after the built-in rules and cannot
 * override them. `approve` holds a command for a second operator's approval;
 * `operators` gives some operators their own lists on top of the common ones.
 * @module
 */

/** A policy-file pattern: words matched against argv; `*` one word, trailing `**` the rest. */
export interface Pattern {
  /** The pattern as written, used in rule ids. */
  text: string;
  tokens: string[];
}

/** Rules of some operators, on top of the common ones. */
export interface OperatorRules {
  users: string[];
  /** Replaces the common mode for these operators, if set. */
  mode?: "denylist" | "allowlist";
  allow: Pattern[];
  deny: Pattern[];
  approve: Pattern[];
}

/** The effective command policy. */
export interface Policy {
  /** `allowlist`: only commands matching an `allow` pattern (or `approve`, once approved) run. */
  mode: "denylist" | "allowlist";
  allow: Pattern[];
  deny: Pattern[];
  /** Commands held until another operator approves them. @default {[]} */
  approve?: Pattern[];
  /** Per-operator rules; {@linkcode policyFor} merges them in. @default {[]} */
  operators?: OperatorRules[];
  /** The file it came from, or null for the built-in default. */
  source: string | null;
  /**
   * Directories no command may write into, on top of the system dirs: the agent
   * adds its state dir (`lib/monitor/monitor.ts`).
   * @default {[]}
   */
  protect?: readonly string[];
}

/** The policy without a file: denylist mode, built-in rules only. */
export const DEFAULT_POLICY: Policy = Object.freeze({
  mode: "denylist",
  allow: [],
  deny: [],
  source: null,
}) as Policy;

/** True if `pattern` matches `argv`, whose program is `program` (normalised name). */
export function matches(pattern: Pattern, argv: string[], programs: string[]): boolean {
  const t = pattern.tokens;
  if (!programs.includes(t[0].toLowerCase())) return false;
  for (let i = 1; i < t.length; i++) {
    if (t[i] === "**") return true;
    if (i >= argv.length || (t[i] !== "*" && t[i] !== argv[i])) return false;
  }
  return argv.length === t.length;
}

const KEYS = new Set(["mode", "allow", "deny", "approve", "operators"]);
const OPERATOR_KEYS = new Set(["users", "mode", "allow", "deny", "approve"]);
const USER_ID = /^@[^:\s]+:[^\s]+$/;

/**
 * The policy as it applies to `sender`: the common lists plus those of every
 * `operators` entry naming the sender (an entry's mode replaces the common one).
 */
export function policyFor(policy: Policy, sender: string | undefined): Policy {
  const mine = (policy.operators ?? []).filter((o) => sender && o.users.includes(sender));
  if (mine.length === 0) return policy;
  return {
    ...policy,
    mode: mine.findLast((o) => o.mode)?.mode ?? policy.mode,
    allow: [...policy.allow, ...mine.flatMap((o) => o.allow)],
    deny: [...policy.deny, ...mine.flatMap((o) => o.deny)],
    approve: [...(policy.approve ?? []), ...mine.flatMap((o) => o.approve)],
    operators: [],
  };
}

function parseOperators(value: unknown, fail: (m: string) => never): OperatorRules[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    fail('"operators" must be an array like [{"users": ["@a:example.org"], "allow": [...]}]');
  }
  return (value as unknown[]).map((o, i) => {
    const where = `"operators"[${i}]`;
    if (typeof o !== "object" || o === null || Array.isArray(o)) fail(`${where} must be an object`);
    const e = o as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!OPERATOR_KEYS.has(k)) {
        fail(`${where}: unknown key "${k}" (allowed: users, mode, allow, deny, approve)`);
      }
    }
    if (!Array.isArray(e.users) || e.users.length === 0) {
      fail(`${where}: "users" must be a non-empty array of Matrix user ids`);
    }
    for (const u of e.users as unknown[]) {
      if (typeof u !== "string" || !USER_ID.test(u)) {
        fail(`${where}: ${JSON.stringify(u)} is not a Matrix user id (@name:server)`);
      }
    }
    if (e.mode !== undefined && e.mode !== "denylist" && e.mode !== "allowlist") {
      fail(`${where}: "mode" must be "denylist" or "allowlist"`);
    }
    return {
      users: e.users as string[],
      mode: e.mode as OperatorRules["mode"],
      allow: parsePatterns(e.allow, `${where}.allow`, fail),
      deny: parsePatterns(e.deny, `${where}.deny`, fail),
      approve: parsePatterns(e.approve, `${where}.approve`, fail),
    };
  });
}

function parsePatterns(value: unknown, key: string, fail: (m: string) => never): Pattern[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(`"${key}" must be an array of strings`);
  return (value as unknown[]).map((p, i) => {
    const where = `"${key}"[${i}]`;
    if (typeof p !== "string") fail(`${where} must be a string, not ${JSON.stringify(p)}`);
    const text = (p as string).trim().replace(/\s+/g, " ");
    if (text === "") fail(`${where} is empty`);
    if (/[\p{Cc}]/u.test(text)) fail(`${where} contains a control character`);
    const tokens = text.split(" ");
    if (/[*/]/.test(tokens[0])) {
      fail(`${where} "${text}": the first word must be a program name (no "*", no "/")`);
    }
    tokens.slice(1).forEach((t, j) => {
      if (t === "**" && j !== tokens.length - 2) {
        fail(`${where} "${text}": "**" may only be the last word`);
      }
      if (t !== "*" && t !== "**" && t.includes("*")) {
        fail(`${where} "${text}": "*" matches whole words only ("*" or a trailing "**")`);
      }
    });
    return { text, tokens };
  });
}

/**
 * Validates a parsed policy document. `source` names it in errors.
 *
 * @throws Error "policy file <source>: <problem>" on unknown keys, wrong types,
 * a missing or unknown mode, or an empty or malformed pattern.
 */
export function parsePolicy(value: unknown, source: string): Policy {
  const fail = (m: string): never => {
    throw new Error(`policy file ${source}: ${m}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail('must be a JSON object like {"mode": "denylist", "deny": ["cat /etc/shadow"]}');
  }
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!KEYS.has(k)) {
      fail(`unknown key "${k}" (allowed: mode, allow, deny, approve, operators)`);
    }
  }
  if (obj.mode !== "denylist" && obj.mode !== "allowlist") {
    fail(`"mode" must be "denylist" or "allowlist", not ${JSON.stringify(obj.mode ?? null)}`);
  }
  return {
    mode: obj.mode as Policy["mode"],
    allow: parsePatterns(obj.allow, "allow", fail),
    deny: parsePatterns(obj.deny, "deny", fail),
    approve: parsePatterns(obj.approve, "approve", fail),
    operators: parseOperators(obj.operators, fail),
    source,
  };
}

/**
 * Loads the policy: {@linkcode DEFAULT_POLICY} without a path, else the JSON file
 * `{"mode": "denylist"|"allowlist", "allow": [...], "deny": [...]}`.
 *
 * @throws Error naming the file when it cannot be read, is not JSON, or is invalid.
 */
export async function loadPolicy(path?: string): Promise<Policy> {
  if (path === undefined) return DEFAULT_POLICY;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message;
    throw new Error(`policy file ${path}: cannot be read: ${why}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`policy file ${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parsePolicy(value, path);
}
