import { rmSync } from "node:fs";
import { hostname } from "node:os";
import { open, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ConvertError } from "../errors.js";

export class OutputLockedError extends ConvertError {
  readonly code = "output.locked";
  constructor(
    readonly out: string,
    readonly pid: number,
    readonly host?: string,
    readonly file?: string,
  ) {
    super(
      host === undefined || host === hostname()
        ? `${out}: another megatron-convert run (pid ${pid}) is writing this output; wait for it or stop it`
        : `${out}: a megatron-convert run on ${host} (pid ${pid}) is writing this output; wait for it, or if it is gone remove ${file ?? "its lock file"}`,
    );
  }
}

const held = new Set<string>();

/** Removes the lock files this process holds (on SIGINT/SIGTERM, before exiting). */
export function releaseHeldLocks(): void {
  for (const file of held) {
    rmSync(file, { force: true });
  }
  held.clear();
}

export interface Lock {
  release(): Promise<void>;
}

export function lockFileOf(out: string): string {
  return join(dirname(out), `.${basename(out)}.megatron-convert-lock`);
}

/**
 * An exclusive lock file holding our pid and host name; a lock whose process is gone is taken
 * over. A lock from another host (workers on a shared filesystem) is always respected.
 */
export async function acquireLock(out: string): Promise<Lock> {
  const file = lockFileOf(out);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(`${process.pid} ${hostname()}`);
      await handle.close();
      held.add(file);
      return {
        release: async () => {
          held.delete(file);
          await rm(file, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw error;
      }
      const [pidText, host] = (await readFile(file, "utf8").catch(() => "")).trim().split(" ");
      const pid = Number(pidText);
      const here = host === undefined || host === hostname();
      if (!here && Number.isInteger(pid)) {
        // on a shared filesystem the holder may run on another machine: its liveness is unknowable here
        throw new OutputLockedError(out, pid, host, file);
      }
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new OutputLockedError(out, pid);
      }
      await rm(file, { force: true });
    }
  }
  throw new OutputLockedError(out, -1);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
