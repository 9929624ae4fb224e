/**
 * A reply shown in place as the agent edits it: the terminal rows it took are
 * erased and the new text drawn there. While it runs, at most a screenful (its
 * last lines) is drawn, since rows that scrolled off cannot be erased; the
 * final text is printed whole, into the scrollback.
 * @module
 */

/** Columns below which nothing is drawn in place: wrapping makes the row count a guess. */
export const MIN_COLUMNS = 20;

/** East Asian wide and fullwidth characters and emoji: two columns each. */
const WIDE =
  /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1faff}\u{20000}-\u{3fffd}]/u;

/** Columns a line takes on a terminal: tabs to the next multiple of 8, wide characters 2. */
export function displayWidth(line: string): number {
  let col = 0;
  for (const ch of line) {
    if (ch === "\t") col = (Math.floor(col / 8) + 1) * 8;
    else col += WIDE.test(ch) ? 2 : 1;
  }
  return col;
}

const rowsOfLine = (line: string, columns: number) =>
  Math.max(1, Math.ceil(displayWidth(line) / columns));

/** Terminal rows `text` takes at `columns` wide (a line of width 0 still takes one). */
export function rowsOf(text: string, columns: number): number {
  let rows = 0;
  for (const line of text.split("\n")) rows += rowsOfLine(line, columns);
  return rows;
}

/**
 * The last lines of `text` that fit in `maxRows` rows at `columns` wide; of a
 * last line taller than that alone, its end.
 */
export function tailFitting(text: string, columns: number, maxRows: number): string {
  const lines = text.split("\n");
  const kept: string[] = [];
  let rows = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const r = rowsOfLine(lines[i], columns);
    if (rows + r > maxRows) {
      if (kept.length === 0) {
        // Characters from the end while they fit (a wide one may leave a column free).
        const chars = [...lines[i]];
        let end = "";
        while (chars.length && rowsOfLine(chars.at(-1)! + end, columns) <= maxRows) {
          end = chars.pop()! + end;
        }
        kept.push(end);
      }
      break;
    }
    rows += r;
    kept.unshift(lines[i]);
  }
  return kept.join("\n");
}

/** A place on the terminal that shows one reply. */
export interface LiveView {
  /** Shows `text` as the reply's running state, in place of what was shown. */
  update(text: string): void;
  /** Replaces what was shown by the final `text`, whole, and ends the view. */
  finish(text: string): void;
}

/** A view writing through `write`, sized by `size()` at each update. */
export function liveView(
  write: (s: string) => void,
  size: () => { columns: number; rows: number },
): LiveView {
  let shownRows = 0;
  let shown = "";
  const erase = () => {
    if (shownRows === 0) return;
    // To the first column of the first row drawn, then clear to the end of the screen.
    write(`\r${shownRows > 1 ? `\x1b[${shownRows - 1}A` : ""}\x1b[J`);
    shownRows = 0;
    shown = "";
  };
  return {
    update(text) {
      const { columns, rows } = size();
      if (columns < MIN_COLUMNS) return;
      const visible = tailFitting(text, columns, Math.max(1, rows - 1));
      if (visible === shown) return;
      erase();
      write(visible);
      shown = visible;
      shownRows = rowsOf(visible, columns);
    },
    finish(text) {
      erase();
      write(text.endsWith("\n") ? text : `${text}\n`);
    },
  };
}
