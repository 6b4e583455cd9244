import { describe, expect, it } from 'vitest';
import { ConfigError, configFromEnv, loadConfig, parseConfig } from '../../gateway/config.ts';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

describe('config', () => {
  it('runs out of the box on port 9001 with the embedded bus', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ port: 9001, bus: { engine: 'memory' }, clientPublish: true, api: { keys: [] } });
  });

  it('honours PORT and SYMPHONIC_ paths from the environment, JSON or comma lists', () => {
    const c = loadConfig({ PORT: '8080', SYMPHONIC_ws__maxFrameBytes: '2048', SYMPHONIC_api__keys: 'a1,b2', SYMPHONIC_clientPublish: 'false' });
    expect(c.port).toBe(8080);
    expect(c.ws.maxFrameBytes).toBe(2048);
    expect(c.api.keys).toEqual(['a1', 'b2']);
    expect(c.clientPublish).toBe(false);
  });

  it('takes several NATS servers and API keys in one variable each, as the README shows', () => {
    const c = loadConfig({
      SYMPHONIC_bus__nats__servers: 'nats://n1:4222,nats://n2:4222,nats://n3:4222',
      SYMPHONIC_api__keys: 'k-billing-0123456789, k-orders-0123456789',
    });
    expect(c.bus.nats.servers).toEqual(['nats://n1:4222', 'nats://n2:4222', 'nats://n3:4222']);
    expect(c.api.keys).toEqual(['k-billing-0123456789', 'k-orders-0123456789']);
    // A value that parses as JSON is JSON: scoped keys, or a lone all-digit key, go in a JSON array.
    expect(loadConfig({ SYMPHONIC_api__keys: '["k1",{"key":"k2","scopes":["publish","admin"],"name":"ops"}]' }).api.keys).toEqual([
      'k1',
      { key: 'k2', scopes: ['publish', 'admin'], name: 'ops' },
    ]);
    expect(loadConfig({ SYMPHONIC_api__keys: '["12345678901234567890"]' }).api.keys).toEqual(['12345678901234567890']);
    expect(() => loadConfig({ SYMPHONIC_api__keys: '12345678901234567890' })).toThrow(/api\.keys/);
  });

  it('reads a JSON file named by SYMPHONIC_CONFIG, the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'symphonic-cfg-'));
    try {
      const file = join(dir, 'c.json');
      writeFileSync(file, JSON.stringify({ port: 7000, bus: { history: { size: 5 } } }));
      const c = loadConfig({ SYMPHONIC_CONFIG: file, SYMPHONIC_bus__history__ageMs: '1000' });
      expect(c.port).toBe(7000);
      expect(c.bus.history).toEqual({ size: 5, ageMs: 1000 });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('fails with a message naming each invalid field', () => {
    const bad = () => parseConfig({ port: 'eighty', ws: { maxFrameBytes: -1 }, bus: { engine: 'redis' } });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/port:[\s\S]*bus\.engine:[\s\S]*ws\.maxFrameBytes:/);
  });

  it('names an unreadable config file', () => {
    expect(() => loadConfig({ SYMPHONIC_CONFIG: '/nonexistent/x.json' })).toThrow(/\/nonexistent\/x\.json/);
  });

  it('configures the NATS engine from the environment, keeper on unless turned off', () => {
    const c = loadConfig({ SYMPHONIC_bus__engine: 'nats', SYMPHONIC_bus__nats__servers: 'nats://127.0.0.1:1,nats://127.0.0.1:2' });
    expect(c.bus.nats).toMatchObject({ servers: ['nats://127.0.0.1:1', 'nats://127.0.0.1:2'], prefix: 'symphonic', replicas: 1, keeper: true });
    expect(loadConfig({ SYMPHONIC_bus__nats__keeper: 'false' }).bus.nats.keeper).toBe(false);
  });

  it('maps nested env names to paths', () => {
    expect(configFromEnv({ SYMPHONIC_bus__history__size: '10', HOST: '127.0.0.1' })).toEqual({ host: '127.0.0.1', bus: { history: { size: 10 } } });
  });
});
