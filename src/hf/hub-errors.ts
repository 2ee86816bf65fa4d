import { ConvertError } from "../errors.js";

/**
 * One class per Hub failure a user can act on. `repo` is `org/name@rev` as the user wrote it.
 * The library's HubApiError is translated into these in hub.ts (by HTTP status and the Hub's
 * X-Error-Code header: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
 */
const RESUME_HINT = "what was downloaded stays in the cache; rerun the same command to resume";

export class HubBadRepoIdError extends ConvertError {
  readonly code = "hub.bad-repo-id";
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`${input}: not a valid Hub repo id (org/name or org/name@revision): ${reason}`);
  }
}

export class HubBadTokenError extends ConvertError {
  readonly code = "hub.bad-token";
  constructor(readonly variable: string) {
    super(`${variable} does not hold a Hugging Face access token (tokens start with "hf_")`, {
      hint: "create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN to it",
    });
  }
}

/** 401/403: a gated or private repo, and no token or a token without access. */
export class HubAccessError extends ConvertError {
  readonly code = "hub.unauthorized";
  constructor(
    readonly repo: string,
    readonly status: number,
    readonly tokenSet: boolean,
  ) {
    super(
      tokenSet
        ? `${repo}: access denied (HTTP ${status}): the token in HF_TOKEN has no access to this gated or private repository`
        : `${repo}: access denied (HTTP ${status}): the repository is gated or private; set HF_TOKEN to an access token that has access`,
      {
        hint: tokenSet
          ? "accept the model's conditions on its Hub page with the account the token belongs to, or use another token"
          : "export HF_TOKEN=hf_... (a read token from https://huggingface.co/settings/tokens), after accepting the model's conditions on its Hub page",
      },
    );
  }
}

export class HubRepoNotFoundError extends ConvertError {
  readonly code = "hub.repo-not-found";
  constructor(
    readonly repo: string,
    readonly hubUrl: string,
    readonly tokenSet: boolean,
  ) {
    super(`${repo}: no such local folder, and no model repository ${JSON.stringify(repo.split("@")[0])} on ${hubUrl}`, {
      hint: tokenSet ? "check the spelling of org/name" : "check the spelling of org/name; if the repository is private, set HF_TOKEN",
    });
  }
}

export class HubRevisionNotFoundError extends ConvertError {
  readonly code = "hub.revision-not-found";
  constructor(
    readonly repo: string,
    readonly revision: string,
  ) {
    super(`${repo}: the repository has no revision ${JSON.stringify(revision)} (branch, tag or commit)`, {
      hint: "write org/name@<branch|tag|commit>, or leave out @... for main",
    });
  }
}

export class HubFileNotFoundError extends ConvertError {
  readonly code = "hub.file-not-found";
  constructor(
    readonly repo: string,
    readonly path: string,
    readonly referencedBy?: string,
  ) {
    super(
      referencedBy === undefined
        ? `${repo}: the repository has no file ${path}`
        : `${repo}: ${referencedBy} names ${path}, but the repository has no such file`,
      { hint: path === "config.json" ? "is this a HuggingFace transformers model repository?" : "the repository is incomplete at this revision" },
    );
  }
}

export class HubNoWeightsError extends ConvertError {
  readonly code = "hub.no-weights";
  constructor(
    readonly repo: string,
    readonly looked: readonly string[],
  ) {
    super(`${repo}: no safetensors weights: the repository has neither ${looked.join(" nor ")}`, {
      hint: "only safetensors checkpoints are read; .bin/.pt weights are not",
    });
  }
}

/** The connection failed or was cut; a partial download is kept as blobs/<etag>.incomplete. */
export class HubNetworkError extends ConvertError {
  readonly code = "hub.network";
  constructor(
    readonly repo: string,
    readonly path: string | undefined,
    readonly reason: string,
    cause?: unknown,
  ) {
    super(`${repo}${path === undefined ? "" : `: ${path}`}: network failure talking to the Hub: ${reason}`, { cause, hint: RESUME_HINT });
  }
}

/** Any other HTTP failure status (5xx, 429 ...). */
export class HubHttpError extends ConvertError {
  readonly code = "hub.http";
  constructor(
    readonly repo: string,
    readonly path: string | undefined,
    readonly status: number,
    readonly detail: string,
  ) {
    super(`${repo}${path === undefined ? "" : `: ${path}`}: the Hub answered HTTP ${status}: ${detail}`, { hint: RESUME_HINT });
  }
}

/** The server broke the protocol: no size, an ignored Range, a body of the wrong length. */
export class HubBadResponseError extends ConvertError {
  readonly code = "hub.bad-response";
  constructor(
    readonly repo: string,
    readonly path: string | undefined,
    readonly reason: string,
  ) {
    super(`${repo}${path === undefined ? "" : `: ${path}`}: unexpected answer from the Hub: ${reason}`, { hint: RESUME_HINT });
  }
}

/** A downloaded (or resumed) file whose hash is not the one the Hub lists; it was deleted. */
export class HubChecksumError extends ConvertError {
  readonly code = "hub.checksum";
  constructor(
    readonly repo: string,
    readonly path: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${repo}: ${path}: downloaded bytes hash to ${found}, the Hub lists ${expected}; the partial file was removed`, {
      hint: "rerun to download it again",
    });
  }
}
