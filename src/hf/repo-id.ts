import { HubBadRepoIdError } from "./hub-errors.js";

/** A model repository on the Hub and the revision (branch, tag or commit) to read. */
export interface RepoRef {
  /** `org/name` */
  readonly id: string;
  /** `main` unless the user wrote `org/name@rev`. */
  readonly revision: string;
}

export const DEFAULT_REVISION = "main";

/**
 * One part of `org/name`, as the Hub allows it (huggingface_hub `validate_repo_id`): letters,
 * digits, `-`, `_`, `.`; starts and ends with a letter or digit; at most 96 characters; no `--`
 * or `..` (the cache folder uses `--` as its separator).
 */
const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;
/** Branch, tag or commit: git ref characters; `/` allowed (`refs/pr/1`), `..` not. */
const REVISION = /^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,254}$/;

/**
 * `org/name` or `org/name@rev` → a RepoRef; undefined when `input` is not shaped like a repo id
 * (it is then taken as a local path). Throws when it is `org/name@` with an invalid revision,
 * since that cannot be a path the user meant.
 */
export function parseRepoId(input: string): RepoRef | undefined {
  const at = input.indexOf("@");
  const id = at < 0 ? input : input.slice(0, at);
  const parts = id.split("/");
  if (parts.length !== 2 || !parts.every(isNamePart)) {
    return undefined;
  }
  if (at < 0) {
    return { id, revision: DEFAULT_REVISION };
  }
  const revision = input.slice(at + 1);
  if (!REVISION.test(revision) || revision.includes("..") || revision.endsWith("/")) {
    throw new HubBadRepoIdError(input, `invalid revision ${JSON.stringify(revision)}`);
  }
  return { id, revision };
}

function isNamePart(part: string): boolean {
  return NAME_PART.test(part) && !part.includes("--") && !part.includes("..");
}

/** `org/name@rev` (the form users type, and the label used in messages). */
export function formatRepoRef(ref: RepoRef): string {
  return `${ref.id}@${ref.revision}`;
}

/** A 40-hex git commit id: a revision that never moves. */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** The cache folder of a model repo: `models--org--name` (huggingface_hub and @huggingface/hub). */
export function repoFolderName(ref: RepoRef): string {
  return ["models", ...ref.id.split("/")].join("--");
}
