/** `npm start`: the gateway from config (env and an optional JSON file), until SIGINT/SIGTERM. */
import { ConfigError, loadConfig } from './config.ts';
import { startGateway } from './server.ts';

try {
  const gateway = await startGateway(loadConfig());
  const stop = async () => {
    await gateway.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.error(`Symphonic gateway on ${gateway.httpUrl}/ (demo), ${gateway.url} (WebSocket), engine ${gateway.bus.engine}`);
} catch (e) {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
}
