import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { onTestFinished } from "vitest";

/**
 * A real HTTP server on 127.0.0.1 that speaks the part of the Hub protocol @huggingface/hub
 * uses (read from its code): model info `GET /api/models/{repo}/revision/{rev}`, paths-info
 * `POST /api/models/{repo}/paths-info/{rev}`, tree `GET /api/models/{repo}/tree/{rev}`, and file
 * resolve `GET|HEAD /{repo}/resolve/{rev}/{path}`: small files are answered directly (ETag = git
 * blob sha1), LFS files (*.safetensors) with a 302 to `/{repo}/blobs/{sha256}` (the "CDN") and
 * X-Repo-Commit / X-Linked-Etag / X-Linked-Size. Range requests get 206 + Content-Range. Errors
 * carry the Hub's X-Error-Code: RepoNotFound (401 without a token, 404 with one),
 * RevisionNotFound, EntryNotFound, GatedRepo (401 without a token, 403 with a wrong one).
 * Every request is logged with the repo file it touched and the body bytes sent.
 */
export interface HubRepoSpec {
  /** `org/name` */
  readonly id: string;
  /** Files of this folder (top level) ... */
  readonly dir?: string;
  /** ... plus or replaced by these ... */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
  /** ... minus these. */
  readonly omit?: readonly string[];
  /** Default: sha1 of the id. `main` points at it. */
  readonly commit?: string;
  /** Files (not the API) need `Authorization: Bearer <gatedToken>`. */
  readonly gatedToken?: string;
}

export interface HubRequest {
  readonly method: string;
  readonly kind: "model-info" | "paths-info" | "tree" | "resolve" | "blob" | "unknown";
  readonly repo?: string;
  /** The repo file a resolve or blob request touched. */
  readonly path?: string;
  readonly range?: string;
  status: number;
  bytes: number;
}

export interface HubServer {
  /** `http://127.0.0.1:<port>`: the hubUrl / HF_ENDPOINT to use. */
  readonly url: string;
  readonly log: readonly HubRequest[];
  /** Resolve and blob requests for one repo file. */
  fileRequests(repo: string, path: string): HubRequest[];
  bytesServed(repo: string, path: string): number;
  /** The next GET of this file's bytes sends `afterBytes` body bytes, then cuts the connection. */
  dropOnce(repo: string, path: string, afterBytes: number): void;
  close(): Promise<void>;
}

interface StoredFile {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly lfs: boolean;
  readonly sha256: string;
  readonly gitSha1: string;
}

interface Repo {
  readonly id: string;
  readonly commit: string;
  readonly files: Map<string, StoredFile>;
  readonly gatedToken: string | undefined;
}

/** Starts the server; it stops when the current test finishes, or after `lifetimeMs` at the latest. */
export async function startHubServer(specs: readonly HubRepoSpec[], options: { lifetimeMs?: number } = {}): Promise<HubServer> {
  const repos = new Map<string, Repo>();
  for (const spec of specs) {
    repos.set(spec.id, await loadRepo(spec));
  }
  const log: HubRequest[] = [];
  const drops = new Map<string, number>();
  const server = createServer((req, res) => {
    const record: HubRequest = { method: req.method ?? "GET", kind: "unknown", status: 0, bytes: 0, ...(req.headers.range === undefined ? {} : { range: req.headers.range }) };
    log.push(record);
    const body: Buffer[] = [];
    req.on("data", (chunk: Buffer) => body.push(chunk));
    req.on("end", () => {
      try {
        route(req, res, record, Buffer.concat(body).toString("utf8"), repos, drops);
      } catch (error) {
        send(res, record, 500, { error: String(error) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  setTimeout(() => void close(), options.lifetimeMs ?? 120_000).unref();
  onTestFinished(close);
  const fileRequests = (repo: string, path: string) => log.filter((r) => r.repo === repo && r.path === path && (r.kind === "resolve" || r.kind === "blob"));
  return {
    url,
    log,
    fileRequests,
    bytesServed: (repo, path) => fileRequests(repo, path).reduce((s, r) => s + r.bytes, 0),
    dropOnce: (repo, path, afterBytes) => drops.set(`${repo}/${path}`, afterBytes),
    close,
  };
}

async function loadRepo(spec: HubRepoSpec): Promise<Repo> {
  const contents = new Map<string, Uint8Array>();
  if (spec.dir !== undefined) {
    for (const name of (await readdir(spec.dir)).sort()) {
      contents.set(name, await readFile(join(spec.dir, name)));
    }
  }
  for (const [name, value] of Object.entries(spec.files ?? {})) {
    contents.set(name, typeof value === "string" ? new TextEncoder().encode(value) : value);
  }
  for (const name of spec.omit ?? []) {
    contents.delete(name);
  }
  const files = new Map<string, StoredFile>();
  for (const [path, bytes] of contents) {
    const gitSha1 = createHash("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
    files.set(path, { path, bytes, lfs: path.endsWith(".safetensors"), sha256: createHash("sha256").update(bytes).digest("hex"), gitSha1 });
  }
  const commit = spec.commit ?? createHash("sha1").update(`commit ${spec.id}`).digest("hex");
  return { id: spec.id, commit, files, gatedToken: spec.gatedToken };
}

function route(req: IncomingMessage, res: ServerResponse, record: HubRequest, body: string, repos: Map<string, Repo>, drops: Map<string, number>): void {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
  const api = parts[0] === "api" && parts[1] === "models";
  const [org, name, verb, rev, ...rest] = api ? parts.slice(2) : parts;
  const id = `${org ?? ""}/${name ?? ""}`;
  Object.assign(record, { repo: id, kind: kindOf(api, verb) });
  const repo = repos.get(id);
  if (repo === undefined) {
    const auth = req.headers.authorization !== undefined;
    return send(res, record, auth ? 404 : 401, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });
  }
  if (record.kind === "blob") {
    const file = [...repo.files.values()].find((f) => f.sha256 === rev);
    Object.assign(record, { path: file?.path });
    if (file === undefined) {
      return send(res, record, 404, { error: "blob not found" });
    }
    if (!gated(req, res, record, repo)) {
      serveBytes(req, res, record, repo, file, drops);
    }
    return;
  }
  const commit = rev === undefined || rev === "main" || rev === "HEAD" || rev === repo.commit ? repo.commit : undefined;
  if (commit === undefined && record.kind !== "unknown") {
    return send(res, record, 404, { error: `Invalid rev id: ${rev ?? ""}` }, { "X-Error-Code": "RevisionNotFound" });
  }
  if (record.kind === "model-info") {
    const siblings = [...repo.files.keys()].map((rfilename) => ({ rfilename }));
    const info = { _id: repo.commit.slice(0, 24), id, private: false, gated: repo.gatedToken === undefined ? false : "manual", downloads: 0, likes: 0, lastModified: "2024-01-01T00:00:00.000Z", sha: commit, siblings };
    return send(res, record, 200, info);
  }
  if (record.kind === "paths-info" || record.kind === "tree") {
    const wanted = record.kind === "tree" ? [...repo.files.keys()] : ((JSON.parse(body) as { paths?: string[] }).paths ?? []);
    const entries = wanted.flatMap((p) => {
      const f = repo.files.get(p);
      return f === undefined ? [] : [{ type: "file", path: f.path, size: f.bytes.byteLength, oid: f.gitSha1, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.byteLength, pointerSize: 134 } } : {}) }];
    });
    return send(res, record, 200, entries);
  }
  if (record.kind === "resolve") {
    const file = repo.files.get(rest.join("/"));
    Object.assign(record, { path: rest.join("/") });
    if (file === undefined) {
      return send(res, record, 404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit });
    }
    if (gated(req, res, record, repo)) {
      return;
    }
    if (file.lfs) {
      const headers = { Location: `/${id}/blobs/${file.sha256}`, "X-Repo-Commit": repo.commit, "X-Linked-Etag": `"${file.sha256}"`, "X-Linked-Size": String(file.bytes.byteLength), ETag: `"${file.gitSha1}"` };
      record.status = 302;
      res.writeHead(302, { ...headers, "Content-Length": "0" }).end();
      return;
    }
    return serveBytes(req, res, record, repo, file, drops);
  }
  send(res, record, 404, { error: "not a Hub endpoint" });
}

function kindOf(api: boolean, verb: string | undefined): HubRequest["kind"] {
  if (api) {
    return verb === "revision" || verb === undefined ? "model-info" : verb === "paths-info" ? "paths-info" : verb === "tree" ? "tree" : "unknown";
  }
  return verb === "resolve" ? "resolve" : verb === "blobs" ? "blob" : "unknown";
}

/** Answers 401/403 GatedRepo (and returns true) when the repo is gated and the token is missing or wrong. */
function gated(req: IncomingMessage, res: ServerResponse, record: HubRequest, repo: Repo): boolean {
  if (repo.gatedToken === undefined || req.headers.authorization === `Bearer ${repo.gatedToken}`) {
    return false;
  }
  const status = req.headers.authorization === undefined ? 401 : 403;
  send(res, record, status, { error: `Access to model ${repo.id} is restricted and you are not in the authorized list.` }, { "X-Error-Code": "GatedRepo" });
  return true;
}

function serveBytes(req: IncomingMessage, res: ServerResponse, record: HubRequest, repo: Repo, file: StoredFile, drops: Map<string, number>): void {
  const size = file.bytes.byteLength;
  const range = req.headers.range;
  const m = range === undefined ? undefined : (/^bytes=(\d+)-(\d*)$/.exec(range) ?? null);
  if (m === null || (m !== undefined && Number(m[1]) >= size)) {
    return send(res, record, 416, { error: "Range Not Satisfiable" }, { "Content-Range": `bytes */${size}` });
  }
  const start = m === undefined ? 0 : Number(m[1]);
  const end = m === undefined || m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  const status = m === undefined ? 200 : 206;
  const etag = file.lfs ? file.sha256 : file.gitSha1;
  record.status = status;
  res.writeHead(status, {
    "Content-Type": "application/octet-stream",
    "Content-Length": String(end - start + 1),
    "Accept-Ranges": "bytes",
    ETag: `"${etag}"`,
    "X-Repo-Commit": repo.commit,
    ...(status === 206 ? { "Content-Range": `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const body = file.bytes.subarray(start, end + 1);
  const drop = drops.get(`${repo.id}/${file.path}`);
  if (drop !== undefined && drop < body.byteLength) {
    drops.delete(`${repo.id}/${file.path}`);
    record.bytes = drop;
    res.write(body.subarray(0, drop), () => res.destroy());
    return;
  }
  record.bytes = body.byteLength;
  res.end(body);
}

function send(res: ServerResponse, record: HubRequest, status: number, json: unknown, headers: Record<string, string> = {}): void {
  record.status = status;
  const text = JSON.stringify(json);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)), ...headers }).end(text);
}
