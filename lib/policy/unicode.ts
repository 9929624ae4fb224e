/**
 * Characters that make a command read differently from what runs.
 * @module
 */

/**
 * Characters that hide what runs: controls, format characters (zero-width,
 * bidi), private/unassigned code points, spaces other than ASCII space, Hangul
 * fillers, the combining grapheme joiner and variation selectors.
 */
const HIDDEN = new RegExp(
  "[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cn}\\p{Cs}\\p{Zl}\\p{Zp}" +
    "\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000" +
    "\\u034F\\u115F\\u1160\\u3164\\uFFA0\\u180B-\\u180F\\uFE00-\\uFE0F\\u{E0100}-\\u{E01EF}]",
  "u",
);

/** The first hidden character of `s` as `U+XXXX`, or null. */
export function hiddenChar(s: string): string | null {
  for (const ch of s) {
    if (ch === "\t" || ch === "\n") continue; // quoted tabs and newlines are visible
    if (HIDDEN.test(ch)) {
      return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  return null;
}
