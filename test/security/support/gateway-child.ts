/**
 * Runs one gateway in a child process for tests that must measure the gateway alone (memory,
 * survival) or give it its own core: started by child-gateway.ts with the config in
 * SYMPHONIC_TEST_CONFIG, answers IPC requests {id, cmd: 'memory' | 'stats' | 'close'}.
 */
import { startGateway } from '../../../gateway/server.ts';

const config = JSON.parse(process.env.SYMPHONIC_TEST_CONFIG ?? '{}') as Record<string, unknown>;
const gw = await startGateway({ host: '127.0.0.1', port: 0, log: { level: 'warn' }, ...config });
const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: { id: number; cmd: string }) => {
  const reply = (body: object) => process.send!({ id: m.id, ...body });
  switch (m.cmd) {
    case 'memory': {
      if (gc) for (let i = 0; i < 3; i++) gc();
      const u = process.memoryUsage();
      return reply({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers, gc: Boolean(gc) });
    }
    case 'stats':
      return reply({ connections: gw.connections() });
    case 'close':
      void gw.close().then(() => {
        reply({ closed: true });
        process.exit(0);
      });
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, ready: true, port: gw.port, url: gw.url, httpUrl: gw.httpUrl });
