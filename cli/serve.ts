import { Command } from 'commander';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DialogueScorer } from '../tasks/dialogue/utteranceOrder.ts';
import { loadDialogueScorer, scoreDialogueInSlices, type SliceOptions } from '../recipes/scoreDialogues.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt } from './options.ts';
import { OptionError } from '../core/errors.ts';

/** Options of {@link createScoreServer}. */
export interface ScoreServerOptions {
  /** Largest request body in bytes; a larger one gets 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most dialogues in one request; more get 422. Default 1000. */
  maxDialogues?: number;
  /** Most turns in one request, all dialogues together; more get 413. Default {@link DEFAULT_MAX_TURNS}. */
  maxTurns?: number;
  /** Most characters of turn text in one request; more get 413. Default {@link DEFAULT_MAX_CHARS}. */
  maxChars?: number;
  /** Windows scored in one encoder pass before other requests get a turn. Default 2. */
  windowsPerSlice?: number;
  /** A request not received whole within this many ms is closed with 408. Default 30000. */
  requestTimeoutMs?: number;
  /** Called after each scored slice (tests watch scoring progress with it). */
  onSlice?: (done: number, total: number) => void;
}

/**
 * Turns a request may hold by default: on the wasm backend (2 cores) 50 turns score in about half a second with a
 * model of pretrain's default size; 10,000 turns took 53 s and 2.7 GB before the limit (issue 10).
 */
export const DEFAULT_MAX_TURNS = 50;
/** Characters of turn text a request may hold by default (50 turns of 200 characters). */
export const DEFAULT_MAX_CHARS = 10_000;

/** An HTTP error answered as `{"error": message}`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * An HTTP server (node:http) that scores dialogue coherence: `POST /score` with `{"turns": [...]}` answers
 * `{"score", "turns"}`; with `{"dialogues": [{"id"?, "turns"}, ...]}` (or arrays of turns) it answers
 * `{"dialogues": [{"id", "score", "turns"}, ...]}`. Bad requests get a JSON error and the server goes on: 400 bad
 * JSON, 404 unknown path, 405 wrong method, 413 body too large, 422 wrong shape (the body is read as JSON whatever its content-type, as curl -d sends). `GET /health`
 * answers `{"ok": true}`. The caller listens (bound to 127.0.0.1 unless told otherwise) and closes it.
 *
 * @example
 * const server = createScoreServer(await loadDialogueScorer('runs/d'));
 * server.listen(8080, '127.0.0.1');
 */
export function createScoreServer(model: DialogueScorer, options: ScoreServerOptions = {}): Server {
  const limits: Limits = {
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    maxDialogues: options.maxDialogues ?? 1000,
    maxTurns: options.maxTurns ?? DEFAULT_MAX_TURNS,
    maxChars: options.maxChars ?? DEFAULT_MAX_CHARS,
  };
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  // Node checks request timeouts every connectionsCheckingInterval ms (30 s by default): check often enough.
  const server = createServer({ requestTimeout, connectionsCheckingInterval: Math.min(1000, requestTimeout) });
  server.headersTimeout = Math.min(requestTimeout, 10_000);
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const slices = { windowsPerSlice: options.windowsPerSlice, onSlice: options.onSlice };
    handle(request, response, model, limits, slices).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      // A client sending too much is told so and then disconnected, rather than read to the end.
      if (status === 413) response.setHeader('connection', 'close');
      send(response, status, { error: message });
    });
  });
  return server;
}

interface Limits {
  maxBodyBytes: number;
  maxDialogues: number;
  maxTurns: number;
  maxChars: number;
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  model: DialogueScorer,
  limits: Limits,
  slices: Pick<SliceOptions, 'windowsPerSlice' | 'onSlice'>,
): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path === '/health') {
    if (request.method !== 'GET') throw methodNotAllowed(response, 'GET');
    return send(response, 200, { ok: true });
  }
  if (path !== '/score') throw new HttpError(404, `no such path ${path} (POST /score, GET /health)`);
  if (request.method !== 'POST') throw methodNotAllowed(response, 'POST');
  const body = await readBody(request, limits.maxBodyBytes);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (cause) {
    throw new HttpError(400, `body is not valid JSON: ${(cause as Error).message}`);
  }
  const dialogues = parseRequest(value, limits);
  // A client that goes away, or a server closing its connections at shutdown, stops the scoring between slices.
  const gone = new AbortController();
  response.once('close', () => gone.abort(new HttpError(499, 'client closed the connection')));
  const scored = [];
  for (const d of dialogues.list) {
    const score = await scoreDialogueInSlices(model, { ...d, source: 'request' }, { ...slices, signal: gone.signal });
    scored.push({ id: d.id, ...score });
  }
  send(response, 200, dialogues.single ? omitId(scored[0]!) : { dialogues: scored });
}

function omitId<T extends { id: string }>(value: T): Omit<T, 'id'> {
  const { id: _, ...rest } = value;
  return rest;
}

function methodNotAllowed(response: ServerResponse, allowed: string): HttpError {
  response.setHeader('allow', allowed);
  return new HttpError(405, `method not allowed; use ${allowed}`);
}

/** The dialogues of a parsed request body, or an HttpError: 422 naming what is wrong with its shape, 413 past the limits. */
function parseRequest(value: unknown, limits: Limits): { single: boolean; list: { id: string; turns: string[] }[] } {
  const shape = 'expected {"turns": ["...", ...]} or {"dialogues": [{"id": ..., "turns": [...]}, ...]}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(422, shape);
  const record = value as { turns?: unknown; dialogues?: unknown };
  if (record.turns !== undefined) {
    const list = [{ id: '0', turns: checkTurns(record.turns, 'turns') }];
    checkSize(list, limits);
    return { single: true, list };
  }
  if (!Array.isArray(record.dialogues)) throw new HttpError(422, shape);
  if (record.dialogues.length > limits.maxDialogues)
    throw new HttpError(422, `at most ${limits.maxDialogues} dialogues a request; got ${record.dialogues.length}`);
  const list = record.dialogues.map((d: unknown, i) => {
    if (Array.isArray(d)) return { id: String(i), turns: checkTurns(d, `dialogues[${i}]`) };
    const { id, turns } = (d ?? {}) as { id?: unknown; turns?: unknown };
    if (id !== undefined && typeof id !== 'string' && typeof id !== 'number')
      throw new HttpError(422, `dialogues[${i}].id must be a string or a number`);
    return { id: id === undefined ? String(i) : String(id), turns: checkTurns(turns, `dialogues[${i}].turns`) };
  });
  checkSize(list, limits);
  return { single: false, list };
}

/** 413 when the request's turns or characters, all dialogues together, pass the server's limits. */
function checkSize(list: { turns: string[] }[], limits: Limits): void {
  const turns = list.reduce((n, d) => n + d.turns.length, 0);
  if (turns > limits.maxTurns)
    throw new HttpError(413, `request has ${turns} turns; at most ${limits.maxTurns} a request (serve --max-turns)`);
  const chars = list.reduce((n, d) => n + d.turns.reduce((m, t) => m + t.length, 0), 0);
  if (chars > limits.maxChars)
    throw new HttpError(
      413,
      `request has ${chars} characters of turns; at most ${limits.maxChars} a request (serve --max-chars)`,
    );
}

function checkTurns(turns: unknown, where: string): string[] {
  if (!Array.isArray(turns) || turns.length === 0 || !turns.every((t) => typeof t === 'string')) {
    throw new HttpError(422, `${where} must be a non-empty array of strings`);
  }
  return turns as string[];
}

/** The request body as text, refusing (413) as soon as it passes `max` bytes. */
function readBody(request: IncomingMessage, max: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (declared > max)
    return Promise.reject(new HttpError(413, `request body of ${declared} bytes is over the limit of ${max}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      request.off('data', onData).off('end', onEnd);
      // Keep reading (and dropping) the rest, so the client gets the 413 instead of a reset connection.
      request.resume();
      reject(new HttpError(413, `request body is over the limit of ${max} bytes`));
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks).toString('utf8'));
    request.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

interface ServeFlags {
  model: string;
  port: number;
  host: string;
  maxBody: number;
  maxTurns: number;
  maxChars: number;
  requestTimeout: number;
  grace: number;
}

/** `tempo-ssl serve`: the dialogue scorer over HTTP. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('serve dialogue coherence scores over HTTP: POST /score {"turns": [...]} or {"dialogues": [...]}')
    .requiredOption('--model <DIR>', 'a pretrain --out folder that trained dialogue-order')
    .option('--port <P>', 'port to listen on (0: any free port)', nonNegativeInt, 8080)
    .option('--host <H>', 'address to bind (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--max-body <bytes>', 'largest request body', positiveInt, 1024 * 1024)
    .option(
      '--max-turns <N>',
      'most turns a request may hold, all dialogues together (more: 413)',
      positiveInt,
      DEFAULT_MAX_TURNS,
    )
    .option(
      '--max-chars <N>',
      'most characters of turns a request may hold (more: 413)',
      positiveInt,
      DEFAULT_MAX_CHARS,
    )
    .option('--request-timeout <ms>', 'a request not received whole in this time is closed', positiveInt, 30_000)
    .option(
      '--grace <ms>',
      'on SIGINT/SIGTERM, the longest shutdown takes: requests in flight get this less 100 ms, then connections are closed',
      nonNegativeInt,
      5000,
    )
    .action(async (flags: ServeFlags, command: Command) => {
      await useBackend(command);
      const model = await loadDialogueScorer(flags.model);
      const server = createScoreServer(model, {
        maxBodyBytes: flags.maxBody,
        maxTurns: flags.maxTurns,
        maxChars: flags.maxChars,
        requestTimeoutMs: flags.requestTimeout,
      });
      server.listen(flags.port, flags.host);
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([error]) => Promise.reject(listenError(error, flags))),
      ]);
      const { address, port } = server.address() as AddressInfo;
      console.log(`listening on http://${address.includes(':') ? `[${address}]` : address}:${port}`);
      const closed = once(server, 'close');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        void closed.then(() => resolve());
      });
      await shutDown(server, closed, flags.grace);
      model.encoder.dispose();
      model.head.dispose();
    });
}

/**
 * Graceful shutdown within `graceMs`: stop accepting, close idle keep-alive connections at once, give requests in
 * flight the grace period less what closing and exiting take, then close every connection (a slow client cannot
 * hold the process past the grace period).
 */
async function shutDown(server: Server, closed: Promise<unknown>, graceMs: number): Promise<void> {
  server.close();
  server.closeIdleConnections();
  // Closing the sockets, freeing the model and exiting took about 40 ms on a quiet 2-core machine (bench/serve.ts).
  const timer = setTimeout(() => server.closeAllConnections(), Math.max(0, graceMs - CLOSE_MARGIN_MS));
  await closed;
  clearTimeout(timer);
}

/** What shutting down takes after the connections are closed, kept out of the grace given to requests. */
const CLOSE_MARGIN_MS = 100;

/** A listen failure as one line naming the address and the fix. */
function listenError(error: unknown, flags: ServeFlags): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const where = `${flags.host}:${flags.port}`;
  if (code === 'EADDRINUSE')
    return new OptionError('--port', flags.port, `a free port (${where} is in use; --port 0 picks one)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return new OptionError('--host', flags.host, 'an address of this machine, e.g. 127.0.0.1');
  if (code === 'EACCES') return new OptionError('--port', flags.port, 'a port this user may bind (1024 or above)');
  return error as Error;
}
