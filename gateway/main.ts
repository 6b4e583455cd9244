/**
 * `npm start` / the container: the gateway from config (env and an optional JSON file).
 *
 * SIGTERM (Kubernetes, docker stop, systemd) drains: readiness false, new clients refused,
 * connected ones moved to other gateways over `drain.windowMs`, then a clean close and exit 0.
 * A drain started by POST /api/drain ends the same way. SIGINT (Ctrl-C) closes at once (every
 * socket gets 4000). A second SIGTERM or SIGINT during a drain exits at once.
 */
import { ConfigError, loadConfig } from './config.ts';
import { startGateway } from './server.ts';

try {
  const gateway = await startGateway(loadConfig());
  let closing = false;
  const closeAndExit = async () => {
    if (closing) return;
    closing = true;
    await gateway.close();
    process.exit(0);
  };
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      console.error(`${signal} again: exiting now`);
      process.exit(1);
    }
    signalled = true;
    if (signal === 'SIGTERM') void gateway.drain();
    else void closeAndExit();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  void gateway.drained.then(closeAndExit);
  console.error(`Symphonic gateway on ${gateway.httpUrl}/ (demo), ${gateway.url} (WebSocket), engine ${gateway.bus.engine}`);
} catch (e) {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
}
