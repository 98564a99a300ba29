/** Starts and stops a real nats-server (JetStream, temp storage, free loopback port) for the scale-out tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The nats-server binary: env NATS_SERVER, else on PATH, else Debian's /usr/sbin/nats-server. */
export function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server';
  throw new Error(
    'nats-server is missing: the scale-out tests need it (apt-get install nats-server, or set NATS_SERVER=/path/to/nats-server)',
  );
}

/** A running nats-server with JetStream, its URL, and a way to stop and restart it on the same port and store. */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Kills the server (SIGKILL when `hard`), keeping its store. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Stops it and removes the store. */
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Starts `nats-server -js -sd <temp> -a 127.0.0.1 -p <free port> ...extraArgs` and waits until it accepts connections. */
export async function startNatsServer(extraArgs: readonly string[] = []): Promise<NatsServer> {
  const binary = natsServerBinary();
  const storeDir = await mkdtemp(join(tmpdir(), 'tempo-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    child = spawn(binary, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port), ...extraArgs], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const deadline = Date.now() + 15_000;
    while (!(await listening(port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within 15 s: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (hard = false): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    start,
    close: async () => {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
