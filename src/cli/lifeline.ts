/**
 * A child that dies with its parent. Under Bun, `run` and `serve` start themselves again as a
 * child (see `relaunchForBunFetchCap` in `cli.ts`); if the parent is killed with SIGKILL (a
 * supervisor, the OOM killer, a CI timeout) no handler of it runs, and the child would go on
 * sending requests and holding the port. So the parent hands the child one end of a pipe as fd 3
 * and never writes to it: the kernel closes the parent's end when the parent dies, however it
 * dies, and the child reads EOF and exits. No third process watches either of them.
 * @module
 */
import * as fs from "node:fs";

/** Names the child's inherited fd that is the parent's lifeline. */
export const LIFELINE_ENV = "MFT_PARENT_FD";

/** The lifeline's fd in the child: the first one after stdin, stdout and stderr. */
export const LIFELINE_FD = 3;

/**
 * What to give `spawn`: the terminal's stdin, stdout, stderr, and the lifeline pipe as fd 3;
 * and the environment entry that tells the child about it.
 */
export function lifelineSpawnOptions(): {
  stdio: ["inherit", "inherit", "inherit", "pipe"];
  env: Record<string, string>;
} {
  return {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: { [LIFELINE_ENV]: String(LIFELINE_FD) },
  };
}

/**
 * In a child started with {@linkcode lifelineSpawnOptions}: calls `onParentGone` once the
 * parent's end of the lifeline closes. Does nothing in a process started otherwise.
 * @param env The environment (the entry is removed, so nothing started from here inherits it).
 * @returns True when a lifeline is being watched.
 */
export function followParent(
  env: Record<string, string | undefined>,
  onParentGone: () => void,
): boolean {
  let fd: number;
  try {
    fd = Number(env[LIFELINE_ENV]);
    if (!Number.isInteger(fd) || fd < 3) return false;
    delete env[LIFELINE_ENV];
  } catch {
    return false; // Deno without access to the variable: not started by our relaunch
  }
  let gone = false;
  const once = () => {
    if (gone) return;
    gone = true;
    onParentGone();
  };
  const lifeline = fs.createReadStream("", { fd, autoClose: true });
  lifeline.on("data", () => {}); // the parent never writes; reading is what sees the EOF
  lifeline.on("end", once);
  lifeline.on("error", once);
  return true;
}
