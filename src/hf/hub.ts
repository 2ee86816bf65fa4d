import { homedir } from "node:os";
import { join } from "node:path";
import { downloadFile, HubApiError, InvalidApiResponseFormatError, modelInfo, pathsInfo, type RepoId } from "@huggingface/hub";
import {
  HubAccessError,
  HubBadResponseError,
  HubBadTokenError,
  HubFileNotFoundError,
  HubHttpError,
  HubNetworkError,
  HubRepoNotFoundError,
  HubRevisionNotFoundError,
} from "./hub-errors.js";
import { formatRepoRef, isCommitHash, type RepoRef } from "./repo-id.js";
import { ConvertError } from "../errors.js";

/**
 * The only module that imports @huggingface/hub. Everything the Hub says goes through
 * HubClient, which turns the library's HubApiError (status, plus the X-Error-Code header seen by
 * the injected fetch) and network failures into the typed errors of hub-errors.ts.
 */
export interface HubOptions {
  /** HF_ENDPOINT; https://huggingface.co by default. */
  readonly hubUrl: string;
  /** HF_TOKEN, else HUGGING_FACE_HUB_TOKEN. */
  readonly accessToken?: string | undefined;
  /** HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  readonly cacheDir: string;
  /** Injected for tests and proxies; global fetch by default. */
  readonly fetch?: typeof fetch | undefined;
}

export const DEFAULT_HUB_URL = "https://huggingface.co";

/** Hub options from the environment variables huggingface_hub and transformers read. */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HubOptions {
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const home = get("HF_HOME") ?? join(get("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "huggingface");
  return {
    hubUrl: (get("HF_ENDPOINT") ?? DEFAULT_HUB_URL).replace(/\/+$/, ""),
    accessToken: get("HF_TOKEN") ?? get("HUGGING_FACE_HUB_TOKEN"),
    cacheDir: get("HF_HUB_CACHE") ?? get("HUGGINGFACE_HUB_CACHE") ?? join(home, "hub"),
  };
}

/** What the Hub lists for one file at one commit. */
export interface HubFileInfo {
  readonly path: string;
  readonly size: number;
  /** The cache's blob name: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  readonly etag: string;
  /** How the downloaded bytes can be checked against `etag`. */
  readonly check: "sha256" | "git-sha1" | "none";
}

/** paths-info takes at most this many paths per request (the library batches copies the same way). */
const PATHS_PER_REQUEST = 100;

export class HubClient {
  readonly tokenSet: boolean;
  /** Response URL -> X-Error-Code of a failed response (HubApiError keeps the URL, not the headers). */
  private readonly errorCodes = new Map<string, string>();
  private readonly fetchFn: typeof fetch;

  constructor(readonly options: HubOptions) {
    if (options.accessToken !== undefined && !options.accessToken.startsWith("hf_")) {
      throw new HubBadTokenError("HF_TOKEN");
    }
    this.tokenSet = options.accessToken !== undefined;
    const base = options.fetch ?? globalThis.fetch;
    this.fetchFn = async (input, init) => {
      const response = await base(input, init);
      const code = response.headers.get("x-error-code");
      if (!response.ok && code !== null) {
        this.errorCodes.set(response.url, code);
      }
      return response;
    };
  }

  /** The commit a revision points at now (model info `sha`); a commit hash is returned as is. */
  async commitOf(ref: RepoRef): Promise<string> {
    if (isCommitHash(ref.revision)) {
      return ref.revision;
    }
    const info = await this.run(ref, undefined, () => modelInfo({ name: ref.id, revision: ref.revision, additionalFields: ["sha"], ...this.params() }));
    if (typeof info.sha !== "string" || !isCommitHash(info.sha)) {
      throw new HubBadResponseError(formatRepoRef(ref), undefined, "the model info has no commit sha");
    }
    return info.sha;
  }

  /** Size and blob name of each of `paths` that exists at `commit` (absent ones are left out). */
  async listPaths(ref: RepoRef, commit: string, paths: readonly string[]): Promise<Map<string, HubFileInfo>> {
    const found = new Map<string, HubFileInfo>();
    for (let i = 0; i < paths.length; i += PATHS_PER_REQUEST) {
      const batch = paths.slice(i, i + PATHS_PER_REQUEST);
      const entries = await this.run(ref, undefined, () => pathsInfo({ repo: this.repoId(ref), paths: batch, revision: commit, ...this.params() }));
      for (const entry of entries) {
        if (entry.type !== "file") {
          continue;
        }
        const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
        if (etag === undefined || !/^[0-9a-f]{40,64}$/.test(etag)) {
          throw new HubBadResponseError(formatRepoRef(ref), entry.path, `paths-info gives no usable oid (${String(etag)})`);
        }
        const check = entry.lfs !== undefined ? "sha256" : entry.xetHash !== undefined ? "none" : "git-sha1";
        found.set(entry.path, { path: entry.path, size: entry.lfs?.size ?? entry.size, etag, check });
      }
    }
    return found;
  }

  /**
   * The file as a Blob whose slices are ranged requests (the library's WebBlob, or XetBlob for
   * Xet-backed files). One probe request (`Range: bytes=0-0`) resolves the URL and size.
   */
  async openBlob(ref: RepoRef, commit: string, path: string): Promise<Blob> {
    const blob = await this.run(ref, path, () => downloadFile({ repo: this.repoId(ref), path, revision: commit, ...this.params() }));
    if (blob === null) {
      throw new HubFileNotFoundError(formatRepoRef(ref), path);
    }
    return blob;
  }

  /** Runs a Hub call, translating its failures. */
  async run<T>(ref: RepoRef, path: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.translate(error, ref, path);
    }
  }

  /** A library or network failure as one of our typed errors; anything else is returned unchanged (a bug). */
  translate(error: unknown, ref: RepoRef, path: string | undefined): unknown {
    const label = formatRepoRef(ref);
    if (error instanceof ConvertError) {
      return error;
    }
    if (error instanceof HubApiError) {
      return this.fromStatus(error.statusCode, this.errorCodes.get(error.url) ?? "", label, ref, path, error.message);
    }
    if (error instanceof InvalidApiResponseFormatError) {
      return new HubBadResponseError(label, path, error.message);
    }
    // WebBlob.stream() aborts its stream with the failed request's message (a string).
    const status = typeof error === "string" ? /^Api error with status (\d+)/.exec(error)?.[1] : undefined;
    if (status !== undefined) {
      return this.fromStatus(Number(status), "", label, ref, path, String(error));
    }
    const reason = networkReason(error);
    return reason === undefined ? error : new HubNetworkError(label, path, reason, error);
  }

  private fromStatus(status: number, code: string, label: string, ref: RepoRef, path: string | undefined, message: string): ConvertError {
    if (code === "GatedRepo" || ((status === 401 || status === 403) && code !== "RepoNotFound")) {
      return new HubAccessError(label, status, this.tokenSet);
    }
    if (code === "RepoNotFound" || (status === 404 && path === undefined && code === "")) {
      return new HubRepoNotFoundError(label, this.options.hubUrl, this.tokenSet);
    }
    if (code === "RevisionNotFound") {
      return new HubRevisionNotFoundError(label, ref.revision);
    }
    if ((code === "EntryNotFound" || status === 404) && path !== undefined) {
      return new HubFileNotFoundError(label, path);
    }
    return new HubHttpError(label, path, status, message.split(". URL:")[0] ?? message);
  }

  private repoId(ref: RepoRef): RepoId {
    return { type: "model", name: ref.id };
  }

  private params(): { hubUrl: string; accessToken: string | undefined; fetch: typeof fetch } {
    return { hubUrl: this.options.hubUrl, accessToken: this.options.accessToken, fetch: this.fetchFn };
  }
}

/** The message of a connection failure (refused, reset, cut mid-body, timed out); undefined for anything else. */
function networkReason(error: unknown): string | undefined {
  if (typeof error === "string") {
    return error;
  }
  if (!(error instanceof Error)) {
    return undefined;
  }
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const code = errorCode(cause) ?? errorCode(error);
  const detail = `${error.message}${cause === undefined ? "" : `: ${cause.message}`}${code === undefined ? "" : ` (${code})`}`;
  if (error.name === "TypeError" && /fetch failed|terminated|network/i.test(error.message)) {
    return detail;
  }
  if (code !== undefined && /^(E[A-Z]+|UND_ERR_\w+)$/.test(code)) {
    return detail;
  }
  return error.name === "AbortError" || error.name === "TimeoutError" ? detail : undefined;
}

function errorCode(error: Error | undefined): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}
