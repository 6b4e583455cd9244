/**
 * The kernel's count of connections refused at a full listen queue (TcpExt ListenOverflows in
 * /proc/net/netstat, machine-wide). A connect storm larger than a server's accept backlog
 * (`net.core.somaxconn` caps it) overflows it; the client's SYN is then retransmitted after 1 s,
 * then 3 s..., which shows as a latency step. Read before and after a storm.
 */
import { readFileSync } from 'node:fs';

export function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i]!.startsWith('TcpExt:')) continue;
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const k = names.indexOf('ListenOverflows');
    return k > 0 ? Number(values[k]) : 0;
  }
  return 0;
}
