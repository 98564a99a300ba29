import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { resolveFfmpegPath } from '../../pipeline/ffmpegPaths.ts';

/** A free loopback TCP port. Test helper, not a test. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * ffmpeg serving a testsrc clip as mpeg-ts on `tcp://127.0.0.1:port` to the first client that connects, then
 * exiting. `frames` bounds the clip (default: endless). Not real-time (no -re): the client's reads pace it, and the
 * decoder's input analysis (5 s of stream time) then costs no wall time.
 */
export function serveTestStream(
  port: number,
  options: { frames?: number; size?: number } = {},
): ChildProcess & { done: Promise<void> } {
  const { frames, size = 32 } = options;
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}x${size}:rate=12`];
  if (frames !== undefined) args.push('-frames:v', String(frames));
  args.push('-flush_packets', '1', '-f', 'mpegts', `tcp://127.0.0.1:${port}?listen`);
  const child = spawn(resolveFfmpegPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return Object.assign(child, { done });
}

/** ffmpeg writing an endless (or `frames`-long) testsrc mpeg-ts to stdout, to pipe into a stdin reader. */
export function testStreamToStdout(options: { frames?: number; size?: number } = {}): ChildProcess {
  const { frames, size = 32 } = options;
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}x${size}:rate=12`];
  if (frames !== undefined) args.push('-frames:v', String(frames));
  args.push('-f', 'mpegts', 'pipe:1');
  return spawn(resolveFfmpegPath(), args, { stdio: ['ignore', 'pipe', 'ignore'] });
}

/** A TCP server on loopback that accepts connections and never sends a byte (a stalled sender). */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
