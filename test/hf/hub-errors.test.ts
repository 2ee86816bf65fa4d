import { cp, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openHfModel, resolveHfConfigInput } from "../../src/commands/hf-input.js";
import { ConvertError } from "../../src/errors.js";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { hubWithCache, REPO_ID, SHARDS, tinyRepo } from "./hub-support.js";

async function failure(promise: Promise<unknown>): Promise<ConvertError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConvertError);
  return error as ConvertError;
}

const cwd = process.cwd();
afterEach(() => {
  process.chdir(cwd);
});

describe("Hub errors", () => {
  it("a gated repo without a token says to set HF_TOKEN; a wrong token is refused; the right one works", async () => {
    const { server, hub } = await hubWithCache([tinyRepo({ gatedToken: "hf_granted" })]);
    for (const remote of [false, true]) {
      const none = await failure(openHfModel(REPO_ID, { hub, remote }));
      expect(none.code).toBe("hub.unauthorized");
      expect(none.message).toContain("HF_TOKEN");
      expect(none.message).toContain("HTTP 401");
      expect(none.hint).toContain("HF_TOKEN=");
    }
    const wrong = await failure(openHfModel(REPO_ID, { hub: { ...hub, accessToken: "hf_other" } }));
    expect(wrong.code).toBe("hub.unauthorized");
    expect(wrong.message).toContain("HTTP 403");
    expect(wrong.message).toContain("the token in HF_TOKEN has no access");
    for (const shard of SHARDS) {
      expect(server.bytesServed(REPO_ID, shard)).toBe(0);
    }
    const model = await openHfModel(REPO_ID, { hub: { ...hub, accessToken: "hf_granted" } });
    await model.close();
    expect(model.tensors.length).toBeGreaterThan(0);
  });

  it("a token that is not a Hugging Face token is refused before any request", async () => {
    const { server, hub } = await hubWithCache();
    const error = await failure(openHfModel(REPO_ID, { hub: { ...hub, accessToken: "secret" } }));
    expect(error.code).toBe("hub.bad-token");
    expect(server.log).toEqual([]);
  });

  it("a missing repo (401 RepoNotFound without a token, 404 with one)", async () => {
    const { hub } = await hubWithCache();
    const anonymous = await failure(openHfModel("acme/no-such-model", { hub }));
    expect(anonymous.code).toBe("hub.repo-not-found");
    expect(anonymous.message).toContain("no such local folder");
    expect(anonymous.hint).toContain("HF_TOKEN");
    const withToken = await failure(openHfModel("acme/no-such-model@main", { hub: { ...hub, accessToken: "hf_x" } }));
    expect(withToken.code).toBe("hub.repo-not-found");
  });

  it("a missing revision", async () => {
    const { hub } = await hubWithCache();
    const error = await failure(openHfModel(`${REPO_ID}@v9.9`, { hub }));
    expect(error.code).toBe("hub.revision-not-found");
    expect(error.message).toContain('"v9.9"');
    const commit = await failure(openHfModel(`${REPO_ID}@${"0".repeat(40)}`, { hub }));
    expect(commit.code).toBe("hub.revision-not-found");
  });

  it("a shard the index names but the repo lacks, found before any shard is fetched", async () => {
    const { server, hub } = await hubWithCache([tinyRepo({ omit: [SHARDS[1]] })]);
    for (const remote of [false, true]) {
      const error = await failure(openHfModel(REPO_ID, { hub, remote }));
      expect(error.code).toBe("hub.file-not-found");
      expect(error.message).toContain(SHARDS[1]);
      expect(error.message).toContain("model.safetensors.index.json names");
    }
    expect(server.fileRequests(REPO_ID, SHARDS[0])).toEqual([]);
  });

  it("a repo without config.json, or without safetensors weights", async () => {
    const { hub } = await hubWithCache([
      tinyRepo({ omit: ["config.json"] }),
      { id: "acme/bin-only", files: { "config.json": JSON.stringify({ architectures: ["MixtralForCausalLM"] }), "pytorch_model.bin": "x" } },
    ]);
    const noConfig = await failure(openHfModel(REPO_ID, { hub }));
    expect(noConfig.code).toBe("hub.file-not-found");
    expect(noConfig.message).toContain("config.json");
    const binOnly = await failure(openHfModel("acme/bin-only", { hub }));
    expect(binOnly.code).toBe("hub.no-weights");
  });

  it("a repo that is not a supported model lists the supported architectures and fetches no weights", async () => {
    const gpt2 = JSON.stringify({ architectures: ["GPT2LMHeadModel"], model_type: "gpt2" });
    const { server, hub } = await hubWithCache([tinyRepo({ files: { "config.json": gpt2 } })]);
    for (const remote of [false, true]) {
      const error = await failure(openHfModel(REPO_ID, { hub, remote }));
      expect(error.code).toBe("mapping.unsupported-model");
      expect(error.message).toContain(`${REPO_ID}@main:config.json`);
      expect(error.message).toContain("GPT2LMHeadModel");
      expect(error.message).toContain("MixtralForCausalLM");
      expect(error.message).toContain("Qwen3MoeForCausalLM");
    }
    for (const shard of SHARDS) {
      expect(server.fileRequests(REPO_ID, shard)).toEqual([]);
    }
  });

  it("an existing local path wins over a repo id of the same spelling", async () => {
    const { server, hub } = await hubWithCache();
    const dir = await makeTempDir();
    await mkdir(join(dir, "acme"));
    await cp(FIXTURE, join(dir, REPO_ID), { recursive: true });
    process.chdir(dir);
    const model = await openHfModel(REPO_ID, { hub });
    await model.close();
    expect(model.hub).toBeUndefined();
    expect(server.log).toEqual([]);
  });

  it("--hf-config org/name fetches config.json and the tokenizer files, no weights", async () => {
    const { server, hub } = await hubWithCache();
    const dir = await resolveHfConfigInput(REPO_ID, { hub });
    expect((await readdir(dir)).sort()).toEqual(["config.json", "tokenizer.json", "tokenizer_config.json"]);
    for (const shard of SHARDS) {
      expect(server.fileRequests(REPO_ID, shard)).toEqual([]);
    }
    expect(await resolveHfConfigInput(FIXTURE, { hub })).toBe(FIXTURE);
  });
});
