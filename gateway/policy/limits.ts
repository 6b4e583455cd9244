/**
 * Connection accounting on this gateway: open connections per client IP (checked at upgrade)
 * and per user (checked at hello), and each user's shared message-rate bucket. Entries vanish
 * with a key's last connection, so memory follows the number of connected users and IPs.
 */
import { bucket, type Bucket } from './rate-limit.ts';

export interface LimitsConfig {
  maxConnectionsPerIp: number;
  maxConnectionsPerUser: number;
  userRatePerSec: number;
  userBurst: number;
}

interface UserEntry<C> {
  readonly conns: Set<C>;
  readonly bucket: Bucket;
}

export class ConnectionLimits<C> {
  private readonly ips = new Map<string, number>();
  private readonly users = new Map<string, UserEntry<C>>();

  constructor(private readonly cfg: LimitsConfig) {}

  /** Whether one more connection from `ip` is allowed (0 = unlimited). */
  ipHasRoom(ip: string): boolean {
    return this.cfg.maxConnectionsPerIp <= 0 || (this.ips.get(ip) ?? 0) < this.cfg.maxConnectionsPerIp;
  }

  addIp(ip: string): void {
    this.ips.set(ip, (this.ips.get(ip) ?? 0) + 1);
  }

  removeIp(ip: string): void {
    const n = (this.ips.get(ip) ?? 0) - 1;
    if (n > 0) this.ips.set(ip, n);
    else this.ips.delete(ip);
  }

  userHasRoom(user: string): boolean {
    return this.cfg.maxConnectionsPerUser <= 0 || (this.users.get(user)?.conns.size ?? 0) < this.cfg.maxConnectionsPerUser;
  }

  /** Registers a connection of `user`; returns the user's shared rate bucket. */
  addUser(user: string, conn: C): Bucket {
    let e = this.users.get(user);
    if (!e) {
      e = { conns: new Set(), bucket: bucket(this.cfg.userRatePerSec, this.cfg.userBurst) };
      this.users.set(user, e);
    }
    e.conns.add(conn);
    return e.bucket;
  }

  removeUser(user: string, conn: C): void {
    const e = this.users.get(user);
    if (!e) return;
    e.conns.delete(conn);
    if (e.conns.size === 0) this.users.delete(user);
  }

  connectionsOf(user: string): C[] {
    return [...(this.users.get(user)?.conns ?? [])];
  }

  stats(): { ips: number; users: number } {
    return { ips: this.ips.size, users: this.users.size };
  }
}
