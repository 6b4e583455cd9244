/**
 * nginx in front of gateways on loopback: round robin, WebSocket upgrades passed through, no
 * sticky sessions (a session resumes on any gateway). A gateway that refuses (draining: 503) or
 * is down is skipped for the next one. Used by `npm run cluster` and the rolling-restart test.
 */
import { join } from 'node:path';

export function renderNginxConfig(dir: string, port: number, gatewayPorts: readonly number[]): string {
  return `
worker_processes 1;
error_log ${join(dir, 'nginx-error.log')} warn;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'nginx-body')};
  proxy_temp_path ${join(dir, 'nginx-proxy')};
  fastcgi_temp_path ${join(dir, 'nginx-fastcgi')};
  uwsgi_temp_path ${join(dir, 'nginx-uwsgi')};
  scgi_temp_path ${join(dir, 'nginx-scgi')};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream symphonic { ${gatewayPorts.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=1s;`).join(' ')} }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://symphonic;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 1h;
      # A draining gateway answers upgrades 503; a stopped one refuses: try the next one.
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 0;
    }
  }
}
`;
}
