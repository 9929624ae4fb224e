/** The version of tibet-nc, for `--version`, the usage text and the `hosts` built-in. */
export const VERSION = "0.1.0";
