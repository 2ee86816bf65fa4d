/**
 * Python scripts the bench writes into its work folder. Each takes the result file as its first
 * argument and writes {exitCode, maxRssKiB, userSeconds, systemSeconds, ...} there on success:
 * resource.getrusage(RUSAGE_SELF), the same kernel accounting probe.js reads for Node.
 */
const USAGE = `
def write_usage(path, **extra):
    u = resource.getrusage(resource.RUSAGE_SELF)
    record = {"exitCode": 0, "maxRssKiB": u.ru_maxrss, "userSeconds": u.ru_utime, "systemSeconds": u.ru_stime}
    record.update(extra)
    with open(path, "w") as f:
        json.dump(record, f)
`;

/**
 * What existing converters do (Megatron's loader_mixtral_hf + saver, or a hand-written script):
 * load every HF tensor into memory with torch, build each rank's OrderedDict with torch ops
 * (fused QKV per query group, [gate; up] per TP chunk, vocab padded with the last row, chunk
 * over TP, experts over EP), then torch.save each rank file. Layer spec te, SequentialMLP,
 * PP=1: the same layout as `hf2mcore --tp T --ep E`. Each file is fsynced after torch.save (which
 * does not), as our writer and the copy baseline do, so all of them pay for reaching the disk.
 *     torch_baseline.py RESULT_JSON HF_DIR OUT_DIR TP EP
 */
export const TORCH_BASELINE_PY = `import argparse, collections, json, os, resource, struct, sys
import torch
${USAGE}
DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def load_all(hf_dir):
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        with open(os.path.join(hf_dir, name), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            for key, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                begin, end = info["data_offsets"]
                buf = bytearray(end - begin)
                f.seek(8 + n + begin)
                f.readinto(buf)
                tensors[key] = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


def rank_model(W, c, tp, t, ep, e):
    H, L, E, ng = c["hidden_size"], c["num_hidden_layers"], c["num_local_experts"], c["num_key_value_heads"]
    V = c["vocab_size"]
    multiple = 128 * tp
    Vp = -(-V // multiple) * multiple

    def part(x, dim):
        return torch.chunk(x, tp, dim)[t].clone(memory_format=torch.contiguous_format)

    def padded(x):
        return torch.cat([x, x[-1:].expand(Vp - V, H)]) if Vp > V else x

    sd = collections.OrderedDict()
    sd["embedding.word_embeddings.weight"] = part(padded(W["model.embed_tokens.weight"]), 0)
    for i in range(L):
        p, q = "model.layers.%d." % i, "decoder.layers.%d." % i
        sd[q + "self_attention.core_attention._extra_state"] = None
        sd[q + "self_attention.linear_proj.weight"] = part(W[p + "self_attn.o_proj.weight"], 1)
        sd[q + "self_attention.linear_proj._extra_state"] = None
        sd[q + "self_attention.linear_qkv.layer_norm_weight"] = W[p + "input_layernorm.weight"]
        qkv = [W[p + "self_attn.%s_proj.weight" % x].reshape(ng, -1, H) for x in "qkv"]
        sd[q + "self_attention.linear_qkv.weight"] = part(torch.cat(qkv, dim=1).reshape(-1, H), 0)
        sd[q + "self_attention.linear_qkv._extra_state"] = None
        sd[q + "pre_mlp_layernorm.weight"] = W[p + "post_attention_layernorm.weight"]
        sd[q + "pre_mlp_layernorm._extra_state"] = None
        sd[q + "mlp.router.weight"] = W[p + "block_sparse_moe.gate.weight"]
        local = E // ep
        for j in range(local):
            x = p + "block_sparse_moe.experts.%d." % (e * local + j)
            y = q + "mlp.experts.local_experts.%d." % j
            gate, up = (torch.chunk(W[x + w + ".weight"], tp, 0)[t] for w in ("w1", "w3"))
            sd[y + "linear_fc1.weight"] = torch.cat([gate, up], dim=0)
            sd[y + "linear_fc1._extra_state"] = None
            sd[y + "linear_fc2.weight"] = part(W[x + "w2.weight"], 1)
            sd[y + "linear_fc2._extra_state"] = None
    sd["decoder.final_layernorm.weight"] = W["model.norm.weight"]
    sd["decoder.final_layernorm._extra_state"] = None
    sd["output_layer.weight"] = part(padded(W["lm_head.weight"]), 0)
    sd["output_layer._extra_state"] = None
    return sd, Vp


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(result, hf_dir, out, tp, ep):
    with open(os.path.join(hf_dir, "config.json")) as f:
        c = json.load(f)
    W = load_all(hf_dir)
    os.makedirs(os.path.join(out, "release"))
    for e in range(ep):
        for t in range(tp):
            model, Vp = rank_model(W, c, tp, t, ep, e)
            args = argparse.Namespace(tensor_model_parallel_size=tp, pipeline_model_parallel_size=1,
                                      expert_model_parallel_size=ep, padded_vocab_size=Vp,
                                      num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"])
            folder = "mp_rank_%02d" % t + ("_%03d" % e if ep > 1 else "")
            os.makedirs(os.path.join(out, "release", folder))
            state = {"args": args, "checkpoint_version": 3.0, "iteration": 0, "model": model}
            path = os.path.join(out, "release", folder, "model_optim_rng.pt")
            torch.save(state, path)
            fsync(path)
    with open(os.path.join(out, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("release")
    write_usage(result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
`;

/**
 * torch.load of one rank file (zip64 when it is over 4 GiB), counting the tensors of "model" and
 * their bytes, so the bench can compare them with the plan.
 *     torch_load_check.py RESULT_JSON FILE.pt
 */
export const TORCH_LOAD_CHECK_PY = `import json, resource, sys
import torch
${USAGE}

def main(result, path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:
        state = torch.load(path, map_location="cpu")
    tensors = [v for v in state["model"].values() if isinstance(v, torch.Tensor)]
    total = sum(v.numel() * v.element_size() for v in tensors)
    write_usage(result, tensors=len(tensors), tensorBytes=total, torchVersion=torch.__version__)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
`;
