import { readFileSync } from 'node:fs';

/**
 * CPU time this process's main thread has used so far, in ms (user + system), or undefined where it cannot
 * be read. Linux only: `/proc/self/task/<pid>/stat` (the main thread's id is the process's), in USER_HZ
 * ticks of 10 ms — so a figure from it needs a window of seconds. `process.cpuUsage()` would not do: it
 * sums every thread of the process, pool threads included.
 */
export function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}
