import { readdirSync, readFileSync } from 'node:fs';

/** Field 19 (nice) of each thread of this process, by thread id. */
export function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) start at field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[19 - 3]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}
