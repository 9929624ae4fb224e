import assert from "node:assert/strict";
import { readTail } from "../lib/audit/tail.ts";

Deno.test("tail: last lines across 64 KiB chunk boundaries match a full read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    // Lines from empty to 150 KiB, so boundaries fall everywhere, including inside lines.
    const sizes = [0, 1, 70_000, 5, 65_535, 65_536, 150_000, 2, 0, 100];
    const lines = sizes.map((n, i) => String.fromCharCode(97 + i).repeat(n));
    for (const torn of ["", "partial line"]) {
      await Deno.writeTextFile(path, lines.map((l) => l + "\n").join("") + torn);
      using file = await Deno.open(path);
      for (let n = 1; n <= lines.length + 2; n++) {
        const tail = readTail(file, n);
        const got = tail.lines.map((l) => new TextDecoder().decode(l));
        assert.deepEqual(got, lines.slice(-n), `n=${n} torn=${JSON.stringify(torn)}`);
        assert.equal(tail.size - tail.tornStart, torn.length);
      }
    }
    await Deno.writeTextFile(path, "no newline at all");
    using file = await Deno.open(path);
    assert.deepEqual(readTail(file, 3), { lines: [], tornStart: 0, size: 17 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tail: an empty file has no lines", async () => {
  const path = await Deno.makeTempFile();
  try {
    using file = await Deno.open(path);
    assert.deepEqual(readTail(file, 5), { lines: [], tornStart: 0, size: 0 });
  } finally {
    await Deno.remove(path);
  }
});
