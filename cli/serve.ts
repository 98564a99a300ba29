import { Command } from 'commander';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { scoreDialogue, type DialogueScorer } from '../tasks/dialogue/utteranceOrder.ts';
import { loadDialogueScorer } from '../recipes/scoreDialogues.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt } from './options.ts';

/** Options of {@link createScoreServer}. */
export interface ScoreServerOptions {
  /** Largest request body in bytes; a larger one gets 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most dialogues in one request; more get 422. Default 1000. */
  maxDialogues?: number;
}

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
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxDialogues = options.maxDialogues ?? 1000;
  return createServer((request, response) => {
    handle(request, response, model, maxBodyBytes, maxDialogues).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      // A client sending too much is told so and then disconnected, rather than read to the end.
      if (status === 413) response.setHeader('connection', 'close');
      send(response, status, { error: message });
    });
  });
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  model: DialogueScorer,
  maxBodyBytes: number,
  maxDialogues: number,
): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path === '/health') {
    if (request.method !== 'GET') throw methodNotAllowed(response, 'GET');
    return send(response, 200, { ok: true });
  }
  if (path !== '/score') throw new HttpError(404, `no such path ${path} (POST /score, GET /health)`);
  if (request.method !== 'POST') throw methodNotAllowed(response, 'POST');
  const body = await readBody(request, maxBodyBytes);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (cause) {
    throw new HttpError(400, `body is not valid JSON: ${(cause as Error).message}`);
  }
  send(response, 200, scoreRequest(model, value, maxDialogues));
}

function methodNotAllowed(response: ServerResponse, allowed: string): HttpError {
  response.setHeader('allow', allowed);
  return new HttpError(405, `method not allowed; use ${allowed}`);
}

/** Scores a parsed request body, or throws 422 naming what is wrong with its shape. */
function scoreRequest(model: DialogueScorer, value: unknown, maxDialogues: number): unknown {
  const shape = 'expected {"turns": ["...", ...]} or {"dialogues": [{"id": ..., "turns": [...]}, ...]}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(422, shape);
  const record = value as { turns?: unknown; dialogues?: unknown };
  if (record.turns !== undefined) {
    const turns = checkTurns(record.turns, 'turns');
    return scoreDialogue(model, { id: '0', turns, source: 'request' });
  }
  if (!Array.isArray(record.dialogues)) throw new HttpError(422, shape);
  if (record.dialogues.length > maxDialogues)
    throw new HttpError(422, `at most ${maxDialogues} dialogues a request; got ${record.dialogues.length}`);
  const dialogues = record.dialogues.map((d: unknown, i) => {
    if (Array.isArray(d)) return { id: String(i), turns: checkTurns(d, `dialogues[${i}]`) };
    const { id, turns } = (d ?? {}) as { id?: unknown; turns?: unknown };
    if (id !== undefined && typeof id !== 'string' && typeof id !== 'number')
      throw new HttpError(422, `dialogues[${i}].id must be a string or a number`);
    return { id: id === undefined ? String(i) : String(id), turns: checkTurns(turns, `dialogues[${i}].turns`) };
  });
  return { dialogues: dialogues.map((d) => ({ id: d.id, ...scoreDialogue(model, { ...d, source: 'request' }) })) };
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
}

/** `tempo-ssl serve`: the dialogue scorer over HTTP. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('serve dialogue coherence scores over HTTP: POST /score {"turns": [...]} or {"dialogues": [...]}')
    .requiredOption('--model <DIR>', 'a pretrain --out folder that trained dialogue-order')
    .option('--port <P>', 'port to listen on (0: any free port)', nonNegativeInt, 8080)
    .option('--host <H>', 'address to bind (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--max-body <bytes>', 'largest request body', positiveInt, 1024 * 1024)
    .action(async (flags: ServeFlags, command: Command) => {
      await useBackend(command);
      const model = await loadDialogueScorer(flags.model);
      const server = createScoreServer(model, { maxBodyBytes: flags.maxBody });
      server.listen(flags.port, flags.host);
      await once(server, 'listening');
      const { address, port } = server.address() as AddressInfo;
      console.log(`listening on http://${address.includes(':') ? `[${address}]` : address}:${port}`);
      const stop = (): void => void server.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await once(server, 'close');
      model.encoder.dispose();
      model.head.dispose();
    });
}
