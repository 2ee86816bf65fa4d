import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HubClient, hubOptionsFromEnv } from "../../src/hf/hub.js";
import { formatRepoRef, isCommitHash, parseRepoId, repoFolderName } from "../../src/hf/repo-id.js";
import { ConvertError } from "../../src/errors.js";

describe("repo ids", () => {
  it("parses org/name and org/name@rev", () => {
    expect(parseRepoId("mistralai/Mixtral-8x7B-v0.1")).toEqual({ id: "mistralai/Mixtral-8x7B-v0.1", revision: "main" });
    expect(parseRepoId("mistralai/Mixtral-8x7B-v0.1@v1.0")).toEqual({ id: "mistralai/Mixtral-8x7B-v0.1", revision: "v1.0" });
    expect(parseRepoId("org/name@refs/pr/3")).toEqual({ id: "org/name", revision: "refs/pr/3" });
    const sha = "0123456789abcdef0123456789abcdef01234567";
    expect(parseRepoId(`org/name@${sha}`)?.revision).toBe(sha);
    expect(isCommitHash(sha)).toBe(true);
    expect(isCommitHash("main")).toBe(false);
    expect(formatRepoRef({ id: "org/name", revision: "main" })).toBe("org/name@main");
    expect(repoFolderName({ id: "mistralai/Mixtral-8x7B-v0.1", revision: "main" })).toBe("models--mistralai--Mixtral-8x7B-v0.1");
  });

  it("leaves anything not shaped like org/name to be a path", () => {
    for (const input of ["./org/name", "/abs/org/name", "../org/name", "name", "a/b/c", "org/", "/name", "org/na--me", "org/.name", "org/name.", "fixtures/tiny mixtral", "C:\\models\\x"]) {
      expect(parseRepoId(input), input).toBeUndefined();
    }
  });

  it("refuses org/name@ with a bad revision (a typo, not a path)", () => {
    for (const input of ["org/name@", "org/name@a..b", "org/name@a b", "org/name@/x", "org/name@x/"]) {
      let error: unknown;
      try {
        parseRepoId(input);
      } catch (e) {
        error = e;
      }
      expect(error, input).toBeInstanceOf(ConvertError);
      expect((error as ConvertError).code).toBe("hub.bad-repo-id");
    }
  });
});

describe("Hub options from the environment", () => {
  it("uses HF_ENDPOINT, HF_TOKEN (else HUGGING_FACE_HUB_TOKEN) and HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub", () => {
    expect(hubOptionsFromEnv({})).toEqual({ hubUrl: "https://huggingface.co", accessToken: undefined, cacheDir: join(homedir(), ".cache", "huggingface", "hub") });
    expect(hubOptionsFromEnv({ HF_HOME: "/data/hf", HUGGING_FACE_HUB_TOKEN: "hf_old" })).toEqual({ hubUrl: "https://huggingface.co", accessToken: "hf_old", cacheDir: "/data/hf/hub" });
    expect(hubOptionsFromEnv({ HF_ENDPOINT: "http://mirror.local/", HF_TOKEN: "hf_new", HUGGING_FACE_HUB_TOKEN: "hf_old", HF_HOME: "/data/hf", HF_HUB_CACHE: "/fast/cache" })).toEqual({
      hubUrl: "http://mirror.local",
      accessToken: "hf_new",
      cacheDir: "/fast/cache",
    });
    expect(hubOptionsFromEnv({ HF_TOKEN: "  ", XDG_CACHE_HOME: "/xdg" })).toEqual({ hubUrl: "https://huggingface.co", accessToken: undefined, cacheDir: "/xdg/huggingface/hub" });
  });

  it("refuses a token that is not a Hugging Face token", () => {
    expect(() => new HubClient({ hubUrl: "http://127.0.0.1:1", cacheDir: "/nonexistent", accessToken: "ghp_abc" })).toThrow(/HF_TOKEN does not hold/);
  });
});
