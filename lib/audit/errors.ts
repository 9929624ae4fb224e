/**
 * Errors of the audit layer. Both mean "do not run commands": the agent must
 * refuse rather than act without a record.
 * @module
 */

/**
 * The audit log cannot be read or written (read-only file system, disk full,
 * wrong permissions, a record that fails verification, …). The caller must refuse
 * the command it was about to run: commands never run unrecorded (fail closed).
 * The message names the file and what to do about it.
 */
export class AuditUnavailableError extends Error {
  /** Creates the error; `cause` is the underlying I/O error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuditUnavailableError";
  }
}

/** The TIBET signing key file is unsafe or unusable; the message says how to fix it. */
export class SigningKeyError extends Error {
  /** Creates the error; `cause` is the underlying I/O or crypto error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SigningKeyError";
  }
}

// Linux errno values, for errors that reach us with only "(os error N)" in the message.
const ERRNO_NAMES: Record<string, string> = {
  "1": "EPERM",
  "2": "ENOENT",
  "5": "EIO",
  "13": "EACCES",
  "20": "ENOTDIR",
  "21": "EISDIR",
  "27": "EFBIG",
  "28": "ENOSPC",
  "30": "EROFS",
  "122": "EDQUOT",
};

/** The OS error code of `e` (e.g. "ENOSPC"), or "" when it has none. */
export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code !== "") return code;
  const errno = /\(os error (\d+)\)/.exec(errorMessage(e))?.[1];
  return errno === undefined ? "" : ERRNO_NAMES[errno] ?? "";
}

/** The message of `e`, or its text form. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
