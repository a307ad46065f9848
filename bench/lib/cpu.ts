/**
 * CPU time of the processes taking part in a run, from /proc (Linux; null elsewhere), so the
 * report can say which side was busy: the service, PostgreSQL, or the bench client itself.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticks: number | null = null;
function clockTicks(): number {
  if (ticks === null) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

interface Stat {
  comm: string;
  ppid: number;
  /** utime + stime, seconds. */
  own: number;
  /** utime alone (user mode), seconds; `own - user` is the time spent in the kernel for it. */
  user: number;
  /** cutime + cstime (reaped children), seconds. */
  children: number;
}

function readStat(pid: number | string): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command sits in parentheses and may hold spaces; the numeric fields follow the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  const t = (i: number) => Number(f[i] ?? 0) / clockTicks();
  return { comm: text.slice(open + 1, close), ppid: Number(f[1] ?? 0), own: t(11) + t(12), user: t(11), children: t(13) + t(14) };
}

/** CPU seconds used so far by one process (all its threads). */
export function processCpuSeconds(pid: number): number | null {
  return readStat(pid)?.own ?? null;
}

/** CPU seconds used so far by one process (all its threads), in user mode and in the kernel. */
export function processCpuSplit(pid: number): { user: number; system: number } | null {
  const s = readStat(pid);
  return s ? { user: s.user, system: s.own - s.user } : null;
}

/** The postmaster of a backend (its parent), or null when the backend is not visible from here. */
export function postmasterOf(backendPid: number): number | null {
  const backend = readStat(backendPid);
  if (backend?.comm !== 'postgres') return null;
  const parent = readStat(backend.ppid);
  return parent?.comm === 'postgres' ? backend.ppid : null;
}

/**
 * CPU seconds used so far by one PostgreSQL server: the postmaster and its children (background
 * workers, backends; those already gone are counted in the postmaster's reaped-children time).
 * Null when the server is not on this host.
 */
export function postgresCpuSeconds(postmaster: number | null): number | null {
  if (postmaster === null) return null;
  let total = 0;
  let found = false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    const s = readStat(e);
    if (s?.comm !== 'postgres' || (Number(e) !== postmaster && s.ppid !== postmaster)) continue;
    found = true;
    total += s.own + s.children;
  }
  return found ? total : null;
}

export interface CpuUse {
  /** Service process (null when not measured). */
  service: number | null;
  /** The PostgreSQL server's processes (null when it is not on this host). */
  postgres: number | null;
  /** The bench process (upload client / COPY client). */
  client: number;
}

/** Starts measuring; the returned function gives the CPU seconds used since. */
export function cpuMeter(servicePid: number | null, postmaster: number | null): () => CpuUse {
  const s0 = servicePid === null ? null : processCpuSeconds(servicePid);
  const p0 = postgresCpuSeconds(postmaster);
  const c0 = process.cpuUsage();
  return () => {
    const s1 = servicePid === null ? null : processCpuSeconds(servicePid);
    const p1 = postgresCpuSeconds(postmaster);
    const c = process.cpuUsage(c0);
    return {
      service: s0 !== null && s1 !== null ? s1 - s0 : null,
      postgres: p0 !== null && p1 !== null ? p1 - p0 : null,
      client: (c.user + c.system) / 1e6,
    };
  };
}

/** CPU seconds (user, kernel) of each thread of `pid` so far, by thread id (Linux; empty elsewhere). */
export function threadCpu(pid: number): Map<number, { user: number; system: number }> {
  const out = new Map<number, { user: number; system: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const s = readStat(`${pid}/task/${tid}`);
    if (s) out.set(Number(tid), { user: s.user, system: s.own - s.user });
  }
  return out;
}

/**
 * The CPU each thread of `pid` used between `before` (threadCpu) and now, as one line: the main
 * thread (the API's event loop), the busiest other threads (a load's pipeline thread, V8's and
 * libuv's helpers), and the rest, each as user+kernel seconds.
 */
export function threadCpuLine(pid: number, before: Map<number, { user: number; system: number }>, top = 3): string {
  const rows: { tid: number; user: number; system: number }[] = [];
  for (const [tid, now] of threadCpu(pid)) {
    const b = before.get(tid) ?? { user: 0, system: 0 };
    rows.push({ tid, user: now.user - b.user, system: now.system - b.system });
  }
  const fmt = (r: { user: number; system: number }) => `${r.user.toFixed(2)}+${r.system.toFixed(2)}`;
  const main = rows.find((r) => r.tid === pid) ?? { user: 0, system: 0 };
  const others = rows.filter((r) => r.tid !== pid).sort((a, b) => b.user + b.system - (a.user + a.system));
  const rest = others.slice(top).reduce((a, r) => ({ user: a.user + r.user, system: a.system + r.system }), { user: 0, system: 0 });
  return `threads cpu s (user+kernel): main ${fmt(main)}; busiest others ${others.slice(0, top).map(fmt).join(', ')}; ${Math.max(0, others.length - top)} more ${fmt(rest)}`;
}
