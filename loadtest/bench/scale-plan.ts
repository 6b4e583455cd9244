/**
 * Where scale.ts's connections go: connection i of the run to gateway i mod G, topic
 * floor(i / G) mod T (so every gateway serves every topic), source address i mod A; generator
 * process w opens a contiguous share. And the check that this machine can hold the plan.
 */
import { readFileSync } from 'node:fs';
import type { ConnectPlan } from './scale-worker.ts';

export interface ScalePlan {
  readonly conns: number;
  readonly gateways: number;
  readonly workers: number;
  readonly topics: number;
  readonly addresses: number;
  /** New connections per second at most, for the whole run; 0: only the window paces. */
  readonly connectRate: number;
  /** Handshakes in flight at most per generator process. */
  readonly window: number;
  /** Sockets per generator process that decode every message. */
  readonly samples: number;
  readonly handshakeTimeoutMs: number;
}

/** `127.0.1.1`, `127.0.1.2`, ... `127.0.1.254`, `127.0.2.1`, ... */
export function sourceAddress(k: number): string {
  return `127.0.${1 + Math.floor(k / 254)}.${1 + (k % 254)}`;
}

/** Ephemeral ports per source address (`net.ipv4.ip_local_port_range`). */
export function portRange(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/).map(Number);
    return hi! - lo! + 1;
  } catch {
    return 28_232;
  }
}

/** This process's open-files limit (`ulimit -n`); children inherit it. */
export function openFilesLimit(): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'latin1'));
  return m ? Number(m[1]) : 1024;
}

/** What in the plan this machine cannot hold, with what to change (empty: it fits). */
export function planProblems(p: ScalePlan, files = openFilesLimit(), ports = portRange()): string[] {
  const problems: string[] = [];
  const perWorker = Math.ceil(p.conns / p.workers);
  const perGateway = Math.ceil(p.conns / p.gateways);
  const perAddress = Math.ceil(p.conns / p.addresses);
  // Each process also holds its own files (modules, pipes, NATS): a few hundred to spare.
  if (perWorker > files - 500) problems.push(`${perWorker} sockets per generator process: the open-files limit is ${files} (more --workers)`);
  if (perGateway > files - 500) problems.push(`${perGateway} sockets per gateway: the open-files limit is ${files} (more --gateways)`);
  if (perAddress > ports) problems.push(`${perAddress} sockets per source address: ip_local_port_range has ${ports} ports (more --addresses)`);
  return problems;
}

/** Each generator process's share: its connections' gateways, topics and source addresses. */
export function workerPlans(p: ScalePlan, ports: number[], topics: string[]): ConnectPlan[] {
  const addresses = Array.from({ length: p.addresses }, (_, k) => sourceAddress(k));
  return Array.from({ length: p.workers }, (_, w) => {
    const plan: ConnectPlan = {
      host: '127.0.0.1',
      ports,
      topics,
      addresses,
      gw: [],
      topic: [],
      addr: [],
      window: p.window,
      ratePerSec: p.connectRate / p.workers,
      samples: p.samples,
      handshakeTimeoutMs: p.handshakeTimeoutMs,
    };
    for (let i = Math.floor((w * p.conns) / p.workers); i < Math.floor(((w + 1) * p.conns) / p.workers); i++) {
      plan.gw.push(i % p.gateways);
      plan.topic.push(Math.floor(i / p.gateways) % p.topics);
      plan.addr.push(i % p.addresses);
    }
    return plan;
  });
}
